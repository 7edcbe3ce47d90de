"""Errors that name a mistake in what the user gave, as opposed to a bug in vos."""
from __future__ import annotations


class UnknownNameError(KeyError):
    """A name the user gave that vos does not know: a config, an official checkpoint, an object id, a key a
    weights file should hold. A ``KeyError``, so that code looking names up keeps working; the command line
    reports this kind as a one-line error, never a bare ``KeyError``, which would be a bug."""

    def __str__(self) -> str:  # the message itself, not KeyError's quoted repr of it
        return str(self.args[0]) if self.args else "unknown name"
