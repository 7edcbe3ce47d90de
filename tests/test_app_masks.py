"""The app's mask store: what goes in comes out, and past its memory budget frames go to files."""
from __future__ import annotations

import numpy as np

from vos.app.masks import MaskStore


def _masks(rng, n, shape=(60, 90)):
    return [rng.random(shape) > 0.5 for _ in range(n)]  # noisy masks: ~700 bytes each, packed


def test_masks_come_back_as_stored_and_memory_stays_within_the_budget():
    rng = np.random.default_rng(0)
    store = MaskStore((60, 90), budget=3000)
    stored = {}
    for frame in range(20):
        a, b = _masks(rng, 2)
        store.put_frame(frame, {1: a, 2: b})
        stored[frame] = {1: a, 2: b}
    assert store.bytes_in_memory <= 3000 and store._on_disk  # most frames went to files
    store.put(7, 3, stored[0][1])
    stored[7][3] = stored[0][1]
    store.discard(2, 1)
    del stored[2][1]
    store.discard_object(2)
    for masks in stored.values():
        masks.pop(2, None)
    assert store.frames() == [f for f in range(20) if f != 2]  # frame 2 lost both its objects
    for frame, masks in stored.items():
        back = store.frame(frame)
        assert back.keys() == masks.keys() and all(np.array_equal(back[k], masks[k]) for k in masks)
    assert store.get(7, 3) is not None and store.get(2, 1) is None and store.get(99, 1) is None
    store.discard(2, 3)  # not there: nothing changes
    store.put_frame(5, {})
    assert 5 not in store.frames()

    folder = store._folder
    assert folder.is_dir()
    store.close()
    assert not folder.exists() and store.frames() == []
