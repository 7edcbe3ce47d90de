"""Errors that name a mistake in what the user gave, or the machine's state, as opposed to a bug in vos; which
exceptions those are, and the one line a user sees for each. The command line and ``vos app`` both decide it here.

Only the standard library is imported at module level: every command imports this module, ``vos --help`` too.
"""
from __future__ import annotations

from typing import Any


class UnknownNameError(KeyError):
    """A name the user gave that vos does not know: a config, an official checkpoint, an object id, a key a
    weights file should hold. A ``KeyError``, so that code looking names up keeps working; the command line
    reports this kind as a one-line error, never a bare ``KeyError``, which would be a bug."""

    def __str__(self) -> str:  # the message itself, not KeyError's quoted repr of it
        return str(self.args[0]) if self.args else "unknown name"


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not fit the model it is loaded into."""


class DownloadError(RuntimeError):
    """A checkpoint could not be downloaded or failed verification."""


class OnnxExtraMissing(ImportError):
    """onnx, onnxscript or onnxruntime is not installed."""


class TrackError(RuntimeError):
    """Tracking stopped part way (a frame that cannot be read, a full disk). The message names the cause and
    what was kept; ``kept`` holds the same, as a :class:`vos.jobs.track.TrackOutputs` (not imported here: this
    module imports nothing of vos). Every file kept is complete."""

    def __init__(self, message: str, kept: Any) -> None:
        super().__init__(message)
        self.kept = kept


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that describe the user's input or the machine's state: reported in one line (the
    command line exits with status 2, the app shows it on the page). Any other exception, a ``KeyError``
    other than :class:`UnknownNameError` included, is a bug and keeps its traceback.

    A function, not a constant, so that a command pays for importing :mod:`streams` only when it fails."""
    from streams.source import SourceError

    return (OSError, ValueError, UnknownNameError, CheckpointError, DownloadError, TrackError, OnnxExtraMissing,
            SourceError)


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
