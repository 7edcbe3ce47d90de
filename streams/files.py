"""Writing output files so that a failure (full disk, Ctrl-C, a killed process) never leaves a partial file
under the final name: everything goes to a temporary file beside it, which is renamed into place once
complete and removed if anything goes wrong.

Temporaries are created here, never with :mod:`tempfile`: its files (0600) and folders (0700) are private,
and a rename keeps the mode, so outputs would reach only their owner. A new file here gets what a plain
``open()`` gives (0666 less the umask: 0644 under umask 022), a new folder what ``mkdir`` gives (0755), and a
replaced file keeps the mode it had."""
from __future__ import annotations

import os
import secrets
import stat
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
        tmp = _create_unique(path.parent, f".{path.name}.", suffix, _new_file)
        write(tmp)
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))  # as open() on an existing file leaves its mode
        except FileNotFoundError:
            pass
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise write_error(path, exc) from None
        raise
    return path


def new_folder(parent: str | os.PathLike, prefix: str) -> Path:
    """A new, uniquely named folder ``parent/<prefix><random>`` with the mode ``mkdir`` gives (0777 less the
    umask), for staging outputs that are renamed into place or out of it once complete."""
    return _create_unique(Path(parent), prefix, "", lambda p: os.mkdir(p, 0o777))


def _new_file(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the kernel applies the umask


def _create_unique(folder: Path, prefix: str, suffix: str, create: Callable[[Path], None]) -> Path:
    for _ in range(100):
        candidate = folder / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            create(candidate)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"{folder}: no free name for a temporary {prefix}*{suffix} after 100 tries")
