"""Official SAM 2 / 2.1 checkpoints by name: downloaded once into a user cache, resumable, verified."""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from .config import CONFIG_ALIASES
from .errors import UnknownNameError

DEFAULT_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything_2"


@dataclass(frozen=True)
class RemoteCheckpoint:
    """Where an official checkpoint lives and what it must be: size in bytes and a sha256 prefix."""

    path: str  # relative to the base URL
    size: int
    sha256_prefix: str


OFFICIAL_CHECKPOINTS: dict[str, RemoteCheckpoint] = {
    "sam2_hiera_tiny": RemoteCheckpoint("072824/sam2_hiera_tiny.pt", 155_906_050, "65b50056"),
    "sam2_hiera_small": RemoteCheckpoint("072824/sam2_hiera_small.pt", 184_309_650, "95949964"),
    "sam2_hiera_base_plus": RemoteCheckpoint("072824/sam2_hiera_base_plus.pt", 323_493_298, "d0bb7f23"),
    "sam2_hiera_large": RemoteCheckpoint("072824/sam2_hiera_large.pt", 897_952_466, "7442e4e9"),
    "sam2.1_hiera_tiny": RemoteCheckpoint("092824/sam2.1_hiera_tiny.pt", 156_008_466, "7402e0d8"),
    "sam2.1_hiera_small": RemoteCheckpoint("092824/sam2.1_hiera_small.pt", 184_416_285, "6d1aa6f3"),
    "sam2.1_hiera_base_plus": RemoteCheckpoint("092824/sam2.1_hiera_base_plus.pt", 323_606_802, "a2345aed"),
    "sam2.1_hiera_large": RemoteCheckpoint("092824/sam2.1_hiera_large.pt", 898_083_611, "2647878d"),
}


class DownloadError(RuntimeError):
    """A checkpoint could not be downloaded or failed verification."""


def cache_dir() -> Path:
    """``$VOS_CACHE_DIR``, else ``$XDG_CACHE_HOME/vos``, else ``~/.cache/vos``."""
    if os.environ.get("VOS_CACHE_DIR"):
        return Path(os.environ["VOS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vos"


def canonical_name(name: str) -> str | None:
    """The official checkpoint name for ``name`` (accepting ``sam2.1_hiera_t`` spellings), or None."""
    name = CONFIG_ALIASES.get(name, name)
    return name if name in OFFICIAL_CHECKPOINTS else None


def checkpoint_path(name: str, *, progress: bool = True) -> Path:
    """Local path of the official checkpoint ``name``, downloading it first if needed.

    The base URL can be pointed at a mirror with ``$VOS_CHECKPOINT_BASE_URL``.
    """
    canonical = canonical_name(name)
    if canonical is None:
        raise UnknownNameError(f"unknown checkpoint name {name!r}; known: {sorted(OFFICIAL_CHECKPOINTS)}")
    remote = OFFICIAL_CHECKPOINTS[canonical]
    dest = cache_dir() / Path(remote.path).name
    if dest.exists() and dest.stat().st_size == remote.size:
        return dest
    base = os.environ.get("VOS_CHECKPOINT_BASE_URL", DEFAULT_BASE_URL).rstrip("/")
    return fetch(f"{base}/{remote.path}", dest, size=remote.size, sha256_prefix=remote.sha256_prefix, progress=progress)


def fetch(
    url: str,
    dest: Path,
    *,
    size: int,
    sha256_prefix: str,
    progress: bool = True,
    attempts: int = 5,
    timeout: float = 30.0,
) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming an interrupted download with an HTTP
    range request; verify size and sha256 prefix before the file takes its final name."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last_error: Exception | None = None
    for _ in range(attempts):
        have = part.stat().st_size if part.exists() else 0
        if have > size:
            part.unlink()
            have = 0
        if have == size:
            break
        try:
            _download_range(url, part, have, size, progress, timeout)
        except (urllib.error.URLError, OSError, DownloadError) as exc:
            last_error = exc
            continue
    else:
        raise DownloadError(f"could not download {url} after {attempts} attempts: {last_error}")
    got = part.stat().st_size if part.exists() else 0
    if got != size:
        raise DownloadError(f"{url}: got {got} bytes, expected {size}")
    digest = _sha256(part)
    if not digest.startswith(sha256_prefix):
        part.unlink()
        raise DownloadError(f"{url}: sha256 {digest[:16]}… does not start with {sha256_prefix}; file discarded")
    os.replace(part, dest)
    return dest


def _download_range(url: str, part: Path, start: int, size: int, progress: bool, timeout: float) -> None:
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if start and response.status != 206:
            start = 0  # the server ignored the range: start over
        mode = "ab" if start else "wb"
        with open(part, mode) as out, tqdm(
            total=size, initial=start, unit="B", unit_scale=True, desc=part.name[:-5], disable=not progress
        ) as bar:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))
    if part.stat().st_size < size:
        raise DownloadError(f"{url}: connection closed at {part.stat().st_size} of {size} bytes")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()
