"""Video files and frame folders: random access equals sequential decoding; clear errors."""
from __future__ import annotations

import numpy as np
import pytest
from videos import moving_shapes, write_jpegs

from streams import FrameFolder, SourceError, VideoFile, open_video


def test_video_file_random_access_matches_sequential(shared_dir):
    path = shared_dir / "data" / "videos" / "bedroom.mp4"
    with open_video(path) as video:
        assert isinstance(video, VideoFile)
        assert len(video) == 200 and video.size == (540, 960) and video.fps == pytest.approx(30.0)
        sequential = [f.image for f in video]
    with VideoFile(path, cache_frames=4) as video:
        for i in (150, 3, 199, 0, 77, 76, 75):  # jumps, and backwards one by one
            frame = video[i]
            assert frame.index == i and np.array_equal(frame.image, sequential[i])
        assert video[30].media_time == pytest.approx(1.0) and video[30].captured_at is None
        with pytest.raises(IndexError, match="frame 200 is out of range: the source has 200 frames"):
            video[200]
    # Reading on after close() (a predictor closes the source it was given) is an error, not a crash in PyAV.
    assert np.array_equal(video[30].image, sequential[30])  # still in its cache
    with pytest.raises(SourceError, match=r"bedroom.mp4: frame 6 was read after the video was closed"):
        video[6]
    video.close()


def test_frame_folder_orders_numerically_and_checks_sizes(tmp_path):
    frames = moving_shapes(12, (24, 40))
    folder = write_jpegs(frames, tmp_path / "f")
    for p in folder.iterdir():  # "2.jpg" must come before "10.jpg"
        p.rename(folder / f"{int(p.stem)}.jpg")
    video = FrameFolder(folder, fps=10)
    assert len(video) == 12 and video.size == (24, 40) and [p.stem for p in video.files][:3] == ["0", "1", "2"]
    assert video[11].media_time == pytest.approx(1.1)
    assert np.abs(video[5].image.astype(int) - frames[5]).mean() < 6  # JPEG round trip (chroma subsampling)
    (folder / "12.jpg").write_bytes(b"not an image")
    with pytest.raises(SourceError, match=r"12\.jpg: frame 12 cannot be read"):
        FrameFolder(folder)[12]


def test_missing_and_corrupt_inputs_are_named(tmp_path):
    with pytest.raises(SourceError, match="nope.mp4: no such video file"):
        open_video(tmp_path / "nope.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(SourceError, match="bad.mp4: cannot be opened as a video"):
        open_video(bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="empty: no image files"):
        open_video(tmp_path / "empty")
