"""Writing output files so that a failure (full disk, Ctrl-C, a killed process) never leaves a partial file
under the final name: everything goes to a temporary file beside it, which is renamed into place once
complete and removed if anything goes wrong."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


class WriteError(OSError):
    """An output file could not be written (disk full, no permission, ...); the message names the file,
    and files written before are intact."""


def write_error(path: str | os.PathLike, exc: OSError, what: str = "cannot be written", kept: str = "") -> WriteError:
    """``exc`` as a :class:`WriteError` saying ``path: what (reason); kept`` (errno kept, no ``[Errno N]``)."""
    if isinstance(exc, WriteError):
        return exc
    error = WriteError(f"{path}: {what} ({exc.strerror or exc})" + (f"; {kept}" if kept else ""))
    error.errno = exc.errno
    return error


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object], suffix: str = ".tmp") -> Path:
    """Call ``write(tmp)`` to produce the file at a temporary path in ``path``'s folder, then rename it to
    ``path``. On any failure the temporary file is removed, an existing ``path`` is left as it was, and
    an ``OSError`` becomes a :class:`WriteError` naming ``path``. ``suffix`` ends the temporary name (a
    writer that picks its format by extension needs ``.tmp.mp4``, say)."""
    path = Path(path)
    tmp = None
    try:
        # A unique name: two writers of one file never share a temporary, and a leftover of a killed run
        # (a dot file ending in .tmp) is never mistaken for an output.
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
        os.close(fd)
        tmp = Path(name)
        write(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise write_error(path, exc) from None
        raise
    return path
