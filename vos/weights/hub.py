"""Official checkpoints by name (SAM 2 / 2.1, EfficientTAM, EdgeTAM): downloaded once into a user cache,
resumable, verified."""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..errors import DownloadError, UnknownNameError
from ..model.config import CONFIG_ALIASES

SAM2_URL = "https://dl.fbaipublicfiles.com/segment_anything_2"
EFFICIENTTAM_URL = "https://huggingface.co/yunyangx/efficient-track-anything/resolve/main"
EDGETAM_URL = "https://huggingface.co/spaces/facebook/EdgeTAM/resolve/main"


@dataclass(frozen=True)
class RemoteCheckpoint:
    """Where an official checkpoint lives (``base`` URL, ``path`` under it) and what it must be: a sha256
    prefix (the whole digest where the publisher gives it) and the size in bytes, where known (else the
    server's)."""

    path: str
    size: int | None
    sha256_prefix: str
    base: str = SAM2_URL


# EfficientTAM's and EdgeTAM's digests and sizes are those of the Git LFS pointers of their Hugging Face
# repositories; the three without an exact size there are checked by their whole digest.
OFFICIAL_CHECKPOINTS: dict[str, RemoteCheckpoint] = {
    "sam2_hiera_tiny": RemoteCheckpoint("072824/sam2_hiera_tiny.pt", 155_906_050, "65b50056"),
    "sam2_hiera_small": RemoteCheckpoint("072824/sam2_hiera_small.pt", 184_309_650, "95949964"),
    "sam2_hiera_base_plus": RemoteCheckpoint("072824/sam2_hiera_base_plus.pt", 323_493_298, "d0bb7f23"),
    "sam2_hiera_large": RemoteCheckpoint("072824/sam2_hiera_large.pt", 897_952_466, "7442e4e9"),
    "sam2.1_hiera_tiny": RemoteCheckpoint("092824/sam2.1_hiera_tiny.pt", 156_008_466, "7402e0d8"),
    "sam2.1_hiera_small": RemoteCheckpoint("092824/sam2.1_hiera_small.pt", 184_416_285, "6d1aa6f3"),
    "sam2.1_hiera_base_plus": RemoteCheckpoint("092824/sam2.1_hiera_base_plus.pt", 323_606_802, "a2345aed"),
    "sam2.1_hiera_large": RemoteCheckpoint("092824/sam2.1_hiera_large.pt", 898_083_611, "2647878d"),
    "efficienttam_s": RemoteCheckpoint(
        "efficienttam_s.pt", 136_375_868, "2b572be30d9e96ee29c8d785fe157c6b079ede7d56fbc8a3671d4120e63c89cd",
        EFFICIENTTAM_URL),
    "efficienttam_s_1": RemoteCheckpoint(
        "efficienttam_s_1.pt", 136_376_327, "4fd5d1f7ae08a7e15086623bf8b12f0b111b773b15564b43c0a5d451fc1a4267",
        EFFICIENTTAM_URL),
    "efficienttam_s_2": RemoteCheckpoint(
        "efficienttam_s_2.pt", 136_376_327, "253e490b4a3d56eedd64e4d466155ec538d1289f52abe78b091b14caefd92343",
        EFFICIENTTAM_URL),
    "efficienttam_s_512x512": RemoteCheckpoint(
        "efficienttam_s_512x512.pt", 136_379_145, "67b5840012737ed2c94a4cb8787c5c1b27b3a946045d2e602e65ef77230b6085",
        EFFICIENTTAM_URL),
    "efficienttam_ti": RemoteCheckpoint(
        "efficienttam_ti.pt", 71_616_316, "acbb17b28cca1f860acee09c9ecb6efdb732080dc7a85a07292c31813175fa7d",
        EFFICIENTTAM_URL),
    "efficienttam_ti_1": RemoteCheckpoint(
        "efficienttam_ti_1.pt", None, "5294bd68820ee1ee5203d54065d4384a6aa1fb4fc632c147417478fcac9576ea",
        EFFICIENTTAM_URL),
    "efficienttam_ti_2": RemoteCheckpoint(
        "efficienttam_ti_2.pt", None, "d2a9ca0a736257ee9bb238d335ba7c794ad853e594cb4f679019ecc0854ee587",
        EFFICIENTTAM_URL),
    "efficienttam_ti_512x512": RemoteCheckpoint(
        "efficienttam_ti_512x512.pt", None, "7d4d652a465f0081391050932f45d8a66768ccc99c8ea393ce8a5927e83f3b9b",
        EFFICIENTTAM_URL),
    "edgetam": RemoteCheckpoint(
        "checkpoints/edgetam.pt", None, "ed2d4850b8792c239689b043c47046ec239b6e808a3d9b6ae676c803fd8780df",
        EDGETAM_URL),
}


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


def download(name: str, *, progress: bool = True) -> list[Path]:
    """Download the official checkpoint ``name``, or every one for ``"all"``, into the cache unless already
    there; their local paths."""
    names = sorted(OFFICIAL_CHECKPOINTS) if name == "all" else [name]
    return [checkpoint_path(n, progress=progress) for n in names]


def checkpoint_path(name: str, *, progress: bool = True) -> Path:
    """Local path of the official checkpoint ``name``, downloading it first if needed.

    ``$VOS_CHECKPOINT_BASE_URL`` points every download at a mirror holding the files under the same paths.
    A file in the cache has passed verification (it takes its name only then).
    """
    canonical = canonical_name(name)
    if canonical is None:
        raise UnknownNameError(f"unknown checkpoint name {name!r}; known: {sorted(OFFICIAL_CHECKPOINTS)}")
    remote = OFFICIAL_CHECKPOINTS[canonical]
    dest = cache_dir() / Path(remote.path).name
    if dest.exists() and (remote.size is None or dest.stat().st_size == remote.size):
        return dest
    base = os.environ.get("VOS_CHECKPOINT_BASE_URL", remote.base).rstrip("/")
    return fetch(f"{base}/{remote.path}", dest, size=remote.size, sha256_prefix=remote.sha256_prefix, progress=progress)


def fetch(
    url: str,
    dest: Path,
    *,
    size: int | None,
    sha256_prefix: str,
    progress: bool = True,
    attempts: int = 5,
    timeout: float = 30.0,
) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming an interrupted download with an HTTP
    range request; verify size (``None``: the size the server announces) and sha256 prefix before the file
    takes its final name."""
    dest = Path(dest)
    if size is None:
        try:
            size = _remote_size(url, timeout)
        except (urllib.error.URLError, OSError) as exc:
            raise DownloadError(f"could not download {url}: {exc}") from None
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


def _remote_size(url: str, timeout: float) -> int:
    """The size the server announces for ``url`` (``Content-Length`` of a ``HEAD`` request)."""
    with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout) as response:
        length = response.headers.get("Content-Length")
    if length is None:
        raise DownloadError(f"{url}: the server does not say how large the file is")
    return int(length)


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
