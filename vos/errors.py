"""Errors that name a mistake in what the user gave, as opposed to a bug in vos."""
from __future__ import annotations


class UnknownNameError(KeyError):
    """A name the user gave that vos does not know: a config, an official checkpoint, an object id, a key a
    weights file should hold. A ``KeyError``, so that code looking names up keeps working; the command line
    reports this kind as a one-line error, never a bare ``KeyError``, which would be a bug."""

    def __str__(self) -> str:  # the message itself, not KeyError's quoted repr of it
        return str(self.args[0]) if self.args else "unknown name"


def shown(value, limit: int = 80) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters: the value a user gave may be huge."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(exc: BaseException) -> str:
    """An error as one line for the user: no ``[Errno N]`` prefix, and never a credential (redacted before
    spaces are collapsed, so that a password holding a tab or a newline is still recognised)."""
    from streams.redact import redact_url

    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(redact_url(text).split())
