"""The masks ``vos app`` shows: per frame and object, bit-packed and compressed, with a bound on memory.

A smooth 1080p mask packs into a few kB, a ragged one into a few hundred; an hour of video with several
objects would still grow without limit, so past ``budget`` bytes a frame's masks go to a file in a
temporary folder instead (removed by :meth:`MaskStore.close`). Not thread-safe: the session's lock
guards it.
"""
from __future__ import annotations

import shutil
import tempfile
import zlib
from pathlib import Path

import numpy as np

from streams.files import atomic_write

BUDGET = 256 << 20


def pack(mask: np.ndarray) -> bytes:
    return zlib.compress(np.packbits(mask).tobytes(), 1)


class MaskStore:
    """``(H, W)`` boolean masks by frame and object id."""

    def __init__(self, shape: tuple[int, int], budget: int = BUDGET) -> None:
        self.shape = tuple(shape)
        self.budget = budget
        self._memory: dict[int, dict[int, bytes]] = {}
        self._bytes = 0  # held in _memory
        self._on_disk: set[int] = set()
        self._folder: Path | None = None

    # ------------------------------------------------------------------ reading
    def frame(self, frame: int) -> dict[int, np.ndarray]:
        """Every object's mask on ``frame`` (objects without one there are left out)."""
        return {obj_id: self._unpack(data) for obj_id, data in self._packed(frame).items()}

    def get(self, frame: int, obj_id: int) -> np.ndarray | None:
        data = self._packed(frame).get(obj_id)
        return None if data is None else self._unpack(data)

    def frames(self) -> list[int]:
        """The frames where some object has a mask, in order."""
        return sorted({f for f, masks in self._memory.items() if masks} | self._on_disk)

    @property
    def bytes_in_memory(self) -> int:
        return self._bytes

    # ------------------------------------------------------------------ writing
    def put(self, frame: int, obj_id: int, mask: np.ndarray) -> None:
        self._set(frame, {**self._packed(frame), obj_id: pack(mask)})

    def put_frame(self, frame: int, masks: dict[int, np.ndarray]) -> None:
        """Replace ``frame``'s masks with ``masks``."""
        self._set(frame, {obj_id: pack(m) for obj_id, m in masks.items()})

    def discard(self, frame: int, obj_id: int) -> None:
        packed = self._packed(frame)
        if obj_id in packed:
            self._set(frame, {k: v for k, v in packed.items() if k != obj_id})

    def discard_object(self, obj_id: int) -> None:
        for frame in self.frames():
            self.discard(frame, obj_id)

    def clear(self) -> None:
        self._memory.clear()
        self._bytes = 0
        for frame in self._on_disk:
            self._path(frame).unlink(missing_ok=True)
        self._on_disk.clear()

    def close(self) -> None:
        self.clear()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    # ------------------------------------------------------------------ inside
    def _unpack(self, data: bytes) -> np.ndarray:
        h, w = self.shape
        return np.unpackbits(np.frombuffer(zlib.decompress(data), np.uint8), count=h * w).reshape(h, w).astype(bool)

    def _packed(self, frame: int) -> dict[int, bytes]:
        if frame in self._memory:
            return self._memory[frame]
        if frame in self._on_disk:
            with np.load(self._path(frame), allow_pickle=False) as stored:
                return {int(k): stored[k].tobytes() for k in stored.files}
        return {}

    def _set(self, frame: int, packed: dict[int, bytes]) -> None:
        self._bytes -= sum(map(len, self._memory.pop(frame, {}).values()))
        if frame in self._on_disk:
            self._path(frame).unlink(missing_ok=True)
            self._on_disk.discard(frame)
        if not packed:
            return
        size = sum(map(len, packed.values()))
        if self._bytes + size <= self.budget:
            self._memory[frame] = packed
            self._bytes += size
            return
        if self._folder is None:
            # Not an output: the session's working copy, in the machine's shared temporary folder, removed on
            # close. Private (0700), as a temporary folder there should be, so other users never read the masks.
            self._folder = Path(tempfile.mkdtemp(prefix="vos-app-masks-"))
        arrays = {str(k): np.frombuffer(v, np.uint8) for k, v in packed.items()}
        atomic_write(self._path(frame), lambda tmp: np.savez(tmp, **arrays), suffix=".tmp.npz")
        self._on_disk.add(frame)

    def _path(self, frame: int) -> Path:
        return self._folder / f"{frame:08d}.npz"
