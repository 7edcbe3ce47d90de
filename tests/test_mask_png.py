"""Mask PNG decoding (the fast path and Pillow agree) and the boundary map the F-measure is built on."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import evaluation.masks
from evaluation.masks import _decode_plain_png, read_index_png
from evaluation.metrics import boundary_map


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))


def _png(samples: np.ndarray, filters: list[int], colour: int = 0) -> bytes:
    """An 8-bit PNG whose row ``y`` is written with the filter ``filters[y]`` (0 None, 1 Sub, 2 Up)."""
    h, w = samples.shape
    s = samples.astype(np.int16)
    rows = []
    for y, f in enumerate(filters):
        if f == 0:
            row = s[y]
        elif f == 1:
            row = s[y] - np.concatenate([[0], s[y, :-1]])
        else:
            row = s[y] - (s[y - 1] if y else 0)
        rows.append(bytes([f]) + (row % 256).astype(np.uint8).tobytes())
    out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
    if colour == 3:
        out += _chunk(b"PLTE", bytes(range(256)) * 3)
    return out + _chunk(b"IDAT", zlib.compress(b"".join(rows))) + _chunk(b"IEND", b"")


@pytest.fixture
def samples():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (23, 31)).astype(np.uint8)


@pytest.mark.parametrize("filters", [[0] * 23, [1] * 23, [0, 1] * 11 + [1]])
@pytest.mark.parametrize("colour", [0, 3])
def test_none_and_sub_filtered_rows_decode_on_the_fast_path(tmp_path, samples, filters, colour):
    path = tmp_path / "m.png"
    path.write_bytes(_png(samples, filters, colour))
    assert np.array_equal(_decode_plain_png(path.read_bytes()), samples)
    assert np.array_equal(np.array(Image.open(path)), samples)  # the test's writer is a valid PNG
    decoded = read_index_png(path)
    assert np.array_equal(decoded, samples) and decoded.flags.writeable


def test_other_filters_and_bit_depths_go_through_pillow(tmp_path, samples):
    up = tmp_path / "up.png"
    up.write_bytes(_png(samples, [0] + [2] * 22))
    assert _decode_plain_png(up.read_bytes()) is None
    assert np.array_equal(read_index_png(up), samples)
    one_bit = tmp_path / "bits.png"
    Image.fromarray(samples > 127).save(one_bit)
    assert _decode_plain_png(one_bit.read_bytes()) is None
    assert np.array_equal(read_index_png(one_bit), (samples > 127).astype(np.uint8))
    libpng = tmp_path / "cv2.png"
    cv2.imwrite(str(libpng), samples)
    assert np.array_equal(read_index_png(libpng), samples)


def test_pillow_palette_files_match(tmp_path, samples):
    path = tmp_path / "p.png"
    image = Image.fromarray(samples, mode="P")
    image.putpalette(list(range(256)) * 3)
    image.save(path, optimize=True)
    assert np.array_equal(read_index_png(path), np.array(Image.open(path)))


def test_corrupt_and_rgb_files_are_named(tmp_path, samples):
    data = bytearray(_png(samples, [0] * 23))
    data[-20] ^= 0xFF  # inside the IDAT chunk
    bad = tmp_path / "bad.png"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="bad.png: corrupt PNG"):
        read_index_png(bad)
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.dstack([samples] * 3)).save(rgb)
    with pytest.raises(ValueError, match="rgb.png: mask PNGs must be palette or grayscale"):
        read_index_png(rgb)


def test_a_corrupt_compressed_stream_is_named(tmp_path, samples):
    """Chunks intact (their CRCs right) around data that does not inflate."""
    header = struct.pack(">IIBBBBB", 31, 23, 8, 0, 0, 0, 0)
    bad = tmp_path / "stream.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", b"\x78\x9c not deflate")
                    + _chunk(b"IEND", b""))
    with pytest.raises(ValueError, match="stream.png: corrupt PNG"):
        read_index_png(bad)


DAVIS = Path(__file__).resolve().parents[2] / "shared" / "data" / "davis2016-dev" / "Annotations" / "480p"


@pytest.mark.skipif(not DAVIS.is_dir(), reason=f"real DAVIS masks not found at {DAVIS}")
def test_zlib_where_isal_is_missing_reads_the_same_masks(monkeypatch):
    """The faster inflate (ISA-L, when installed) and zlib's give the same masks, real DAVIS files among them."""
    files = sorted(DAVIS.glob("*/0000[0-4].png"))
    assert len(files) == 40
    fast = [read_index_png(f) for f in files]
    monkeypatch.setattr(evaluation.masks, "_inflate", zlib.decompress)
    for f, mask in zip(files, fast):
        assert np.array_equal(read_index_png(f), mask), f


def _reference_boundary(seg: np.ndarray) -> np.ndarray:
    """Pixels differing from their right, lower or lower-right neighbour; neighbours outside the image are
    ignored (edge replication makes them equal to a pixel already compared)."""
    p = np.pad(seg, ((0, 1), (0, 1)), mode="edge")
    c = p[:-1, :-1]
    return (c ^ p[:-1, 1:]) | (c ^ p[1:, :-1]) | (c ^ p[1:, 1:])


@pytest.mark.parametrize("seed", range(5))
def test_boundary_map_matches_the_bsds_definition(seed):
    rng = np.random.default_rng(seed)
    seg = cv2.resize((rng.random((6, 9)) > 0.5).astype(np.uint8), (37, 29), interpolation=cv2.INTER_NEAREST) > 0
    seg[rng.random(seg.shape) > 0.97] ^= True  # isolated pixels and ones on the image edge
    assert np.array_equal(boundary_map(seg), _reference_boundary(seg))
    assert not boundary_map(np.ones((5, 5), bool)).any()
