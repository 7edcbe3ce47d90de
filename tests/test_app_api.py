"""``vos app``'s HTTP API without a browser: clicks, boxes, the mask choice, objects, tracking, cancelling,
corrections, the export and its replay by ``vos track --prompts``, and the errors the page shows."""
from __future__ import annotations

import numpy as np
import pytest
from app_client import object_pixels, running_app
from PIL import Image
from videos import moving_shapes, write_jpegs

import vos
from vos.app.session import BusyError, Job, Session
from vos.cli import main

SIZE = (192, 320)  # (H, W)
DISC = (64, 77)  # the disc's centre on frame 0 (x, y); it moves 3 px right and 1.5 down a frame
SQUARE = (220, 111, 266, 157)  # a box around the square on frame 0


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_jpegs(moving_shapes(10, SIZE), tmp_path_factory.mktemp("app") / "shapes")


@pytest.fixture(scope="module")
def model():
    return vos.load_model()


def test_a_click_shows_the_mask_where_it_was_and_the_choice_of_masks(video, model):
    with running_app(video, lambda c: model) as client:
        state = client.ok("/api/object")
        assert state["selected"] == 1 and state["video"]["frames"] == 10
        state = client.ok("/api/click", {"frame": 0, "obj_id": 1, "x": DISC[0], "y": DISC[1]})
        disc = object_pixels(client.layer(0), 1)
        assert disc[DISC[1], DISC[0]] and 0.01 < disc.mean() < 0.2
        assert not object_pixels(client.layer(1), 1).any()  # nothing tracked yet
        choice = state["candidates"]
        assert choice["frame"] == 0 and len(choice["ious"]) == 3 and choice["chosen"] == int(np.argmax(choice["ious"]))
        thumbnail = client.get("/api/candidate/0.jpg")
        assert thumbnail[:2] == b"\xff\xd8"

        # Another candidate: the object's prompt on the frame becomes that mask, and the choice stays on offer.
        other = (choice["chosen"] + 1) % 3
        state = client.ok("/api/pick", {"index": other})
        assert state["candidates"]["chosen"] == other
        assert [("mask" in p) for p in state["prompts"]] == [True]

        # Clicks refine that mask; with two of them the decoder gives one mask, no choice.
        client.ok("/api/click", {"frame": 0, "obj_id": 1, "x": DISC[0] + 5, "y": DISC[1], "positive": True})
        state = client.ok("/api/click", {"frame": 0, "obj_id": 1, "x": DISC[0] + 40, "y": DISC[1], "positive": False})
        assert state["candidates"] is None and len(state["prompts"]) == 3
        assert object_pixels(client.layer(0), 1)[DISC[1], DISC[0]]
        state = client.ok("/api/clear", {"frame": 0, "obj_id": 1})
        assert state["prompts"] == [] and not object_pixels(client.layer(0), 1).any()


def test_objects_are_added_selected_and_removed(video, model):
    with running_app(video, lambda c: model) as client:
        client.ok("/api/object")
        client.ok("/api/box", {"frame": 2, "obj_id": 1, "x1": SQUARE[0] - 4, "y1": SQUARE[1], "x2": SQUARE[2] - 4, "y2": SQUARE[3]})
        state = client.ok("/api/object")
        assert [o["id"] for o in state["objects"]] == [1, 2] and state["selected"] == 2
        assert state["objects"][0]["colour"] != state["objects"][1]["colour"]
        client.ok("/api/click", {"frame": 2, "obj_id": 2, "x": DISC[0] + 6, "y": DISC[1] + 3})
        state = client.ok("/api/select", {"obj_id": 1})
        assert state["selected"] == 1
        layer = client.layer(2)
        assert object_pixels(layer, 1).any() and object_pixels(layer, 2).any()
        state = client.ok("/api/remove", {"obj_id": 1})
        assert [o["id"] for o in state["objects"]] == [2] and {p["obj_id"] for p in state["prompts"]} == {2}
        assert not object_pixels(client.layer(2), 1).any()
        status, answer = client.post("/api/select", {"obj_id": 1})
        assert status == 400 and "object 1 does not exist" in answer["error"]


def test_errors_are_answered_and_the_server_stays_up(video, model, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with running_app(tmp_path / "missing.mp4", lambda c: vos.load_model(c) if c else model) as client:
        state = client.state()
        assert state["video"] is None and "missing.mp4: no such video file" in state["error"]
        status, answer = client.post("/api/object")
        assert status == 400 and "no video is open" in answer["error"]

        status, answer = client.post("/api/open", {"video": str(video), "checkpoint": str(bad)})
        assert status == 400 and "bad.pt" in answer["error"]
        assert client.state()["video"] is None
        state = client.ok("/api/open", {"video": str(video), "checkpoint": str(vos.DEFAULT_WEIGHTS)})
        assert state["video"]["frames"] == 10 and state["error"] is None
        assert state["checkpoint"] == str(vos.DEFAULT_WEIGHTS)

        client.ok("/api/object")
        status, answer = client.post("/api/click", {"frame": 0, "obj_id": 1, "x": 400, "y": 50})
        assert status == 400 and answer["error"] == "object 1, frame 0: click (400, 50) is outside the 320x192 frame"
        status, answer = client.post("/api/click", {"frame": 10, "obj_id": 1, "x": 4, "y": 5})
        assert status == 400 and "frame 10 does not exist" in answer["error"]
        status, answer = client.post("/api/box", {"frame": 0, "obj_id": 1, "x1": 50, "y1": 5, "x2": 10, "y2": 40})
        assert status == 400 and "x2 < x1" in answer["error"]
        status, answer = client.post("/api/click", {"frame": 0, "obj_id": 1, "x": "left", "y": 5})
        assert status == 400 and "x must be a number" in answer["error"]
        status, answer = client.post("/api/click", {"frame": 0, "obj_id": 1})
        assert status == 400 and "missing field 'x'" in answer["error"]
        status, answer = client.post("/api/track")
        assert status == 400 and "nothing to track" in answer["error"]
        status, answer = client.post("/api/export", {"folder": str(tmp_path / "out")})
        assert status == 400 and "nothing to track" in answer["error"]
        assert client.state()["prompts"] == []  # nothing half-done was kept

        status, answer = client.post("/api/open", {"video": str(tmp_path / "missing.mp4")})
        assert status == 400 and "no such video file" in answer["error"]
        assert client.state()["video"]["frames"] == 10  # the open video stays
        status, answer = client.post("/api/open", {"video": "rtsp://admin:s3cret@10.0.0.5/stream"})
        assert status == 400 and "opens video files and folders of frames" in answer["error"]
        assert "s3cret" not in answer["error"] and "10.0.0.5/stream" in answer["error"]


def test_the_checkpoint_stays_until_changed_and_image_addresses_differ_between_servers(video, model):
    loads = []

    def load(checkpoint):
        loads.append(checkpoint)
        return model

    with running_app(video, load, checkpoint="sam2.1_hiera_tiny") as client:
        first = client.state()
        assert first["checkpoint"] == "sam2.1_hiera_tiny"  # the page fills its field with it
        state = client.ok("/api/open", {"video": str(video), "checkpoint": "sam2.1_hiera_tiny"})
        assert loads == ["sam2.1_hiera_tiny"] and state["opened"] != first["opened"]
        state = client.ok("/api/open", {"video": str(video), "checkpoint": ""})  # an empty field: the embedded model
        assert loads == ["sam2.1_hiera_tiny", None] and state["checkpoint"] is None
    with running_app(video, load) as client:
        # A restarted server's first video must not reuse the images the browser cached from the last one.
        assert client.state()["opened"] != first["opened"]


def test_an_export_never_replaces_an_earlier_one_without_overwrite(video, model, tmp_path):
    with running_app(video, lambda c: model) as client:
        client.ok("/api/object")
        client.ok("/api/click", {"frame": 0, "obj_id": 1, "x": DISC[0], "y": DISC[1]})
        status, answer = client.post("/api/export", {"folder": " ", "masks": "none", "overlay": False})
        assert status == 400 and "no export folder given" in answer["error"]
        out = tmp_path / "out"
        client.ok("/api/export", {"folder": str(out), "masks": "none", "overlay": False})
        assert client.wait_job()["state"] == "done"
        earlier = (out / "prompts.json").read_text()
        client.ok("/api/click", {"frame": 0, "obj_id": 1, "x": DISC[0] + 30, "y": DISC[1], "positive": False})
        status, answer = client.post("/api/export", {"folder": str(out), "masks": "none", "overlay": False})
        assert status == 400 and "prompts.json exists" in answer["error"]
        assert (out / "prompts.json").read_text() == earlier
        client.ok("/api/export", {"folder": str(out), "masks": "none", "overlay": False, "overwrite": True})
        assert client.wait_job()["state"] == "done"
        assert (out / "prompts.json").read_text() != earlier


def test_only_this_page_may_use_the_server(video, model):
    import urllib.error
    import urllib.request

    with running_app(video, lambda c: model) as client:
        request = urllib.request.Request(client.url + "api/state", headers={"Host": "attacker.example:80"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request)
        assert info.value.code == 403
        request = urllib.request.Request(client.url + "api/object", b"{}", {"Content-Type": "text/plain"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request)
        assert info.value.code == 415
        assert client.state()["objects"] == []
        assert b"<title>vos app</title>" in client.get("/")


def test_track_correct_and_export_replay_to_the_same_masks(video, model, tmp_path):
    with running_app(video, lambda c: model) as client:
        client.ok("/api/object")
        client.ok("/api/click", {"frame": 3, "obj_id": 1, "x": DISC[0] + 9, "y": DISC[1] + 5})
        client.ok("/api/object")
        client.ok("/api/box", {"frame": 3, "obj_id": 2, "x1": SQUARE[0] - 6, "y1": SQUARE[1], "x2": SQUARE[2] - 6, "y2": SQUARE[3]})
        client.ok("/api/track")
        job = client.wait_job()
        assert job["state"] == "done" and job["done"] == 10
        state = client.state()
        assert state["tracked"] == [[0, 9]] and state["stale"] == []
        late = client.layer(9)
        disc = object_pixels(late, 1)
        ys, xs = np.nonzero(disc)
        assert disc.any() and abs(xs.mean() - (DISC[0] + 27)) < 12 and abs(ys.mean() - (DISC[1] + 13.5)) < 12
        assert object_pixels(late, 2).any()

        # A correction on a tracked frame starts from the tracked mask; the next run takes it as a prompt.
        before = object_pixels(client.layer(7), 1)
        state = client.ok("/api/click", {"frame": 7, "obj_id": 1, "x": DISC[0] + 21 + 40, "y": DISC[1] + 10, "positive": True})
        assert state["prompts"][-2:] == [{"frame": 7, "obj_id": 1, "mask": True},
                                         {"frame": 7, "obj_id": 1, "points": [[125.0, 87.0]], "labels": [1]}]
        assert state["stale"] == [[0, 9]]
        corrected = object_pixels(client.layer(7), 1)
        assert (corrected != before).any()
        client.ok("/api/track")
        assert client.wait_job()["state"] == "done"
        assert (object_pixels(client.layer(7), 1) == corrected).all()
        shown = {t: client.layer(t) for t in range(10)}

        out = tmp_path / "export"
        client.ok("/api/export", {"folder": str(out), "masks": "sav", "overlay": True})
        job = client.wait_job()
        assert job["state"] == "done", job
        assert job["message"].endswith(f"replay: vos track {video} --prompts {out / 'prompts.json'} --precision float32")
        # What the page showed is what was exported, object by object (where objects overlap the page shows one).
        for t, layer in shown.items():
            for obj_id, other in ((1, 2), (2, 1)):
                exported = np.array(Image.open(out / "masks" / f"{obj_id:03d}" / f"{t:05d}.png")) > 0
                page = object_pixels(layer, obj_id)
                assert not (page & ~exported).any() and not (exported & ~page & ~object_pixels(layer, other)).any()
        status, answer = client.post("/api/export", {"folder": str(out), "masks": "davis"})
        assert status == 400 and "already holds a previous run's outputs" in answer["error"]

    assert (out / "overlay.mp4").stat().st_size > 0 and (out / "prompts-masks").is_dir()
    # vos track replays prompts.json to the same masks (the browser test compares DAVIS masks).
    replay = tmp_path / "replay"
    args = ["track", str(video), "--prompts", str(out / "prompts.json"), "--out", str(replay), "--masks", "sav", "--no-video"]
    assert main(args) == 0
    for t in range(10):
        for obj_id in (1, 2):
            name = f"{obj_id:03d}/{t:05d}.png"
            assert np.array_equal(np.array(Image.open(replay / "masks" / name)), np.array(Image.open(out / "masks" / name)))


def test_cancel_keeps_what_was_tracked_and_a_running_job_refuses_changes(video, model, tmp_path):
    session = Session(model, video)
    try:
        session.add_object()
        session.click(4, 1, DISC[0] + 12, DISC[1] + 6)
        job = Job("track", session.num_frames)
        stop_after = 3

        store = session._store

        def store_and_stop(result):
            store(result)
            if job.done + 1 == stop_after:
                job.stop.set()

        session._store = store_and_stop
        session.job = job
        with pytest.raises(BusyError, match="track is running"):
            session.click(4, 1, 10, 10)
        session.run_track(job)
        assert job.state == "cancelled" and job.done == stop_after
        assert session.state()["tracked"] == [[4, 6]]  # forward from the prompt, stopped after 3 frames
        assert set(session.masks.frames()) == {4, 5, 6}

        # An export stopped part way keeps complete files, as vos track does on Ctrl-C.
        session._store = store
        job = Job("export", session.num_frames)
        job.stop.set()
        kept = session.run_export(list(session.prompts), tmp_path / "out", "davis", False, False, job)
        assert job.state == "cancelled" and "interrupted after 1 of 10 frames" in job.message
        assert kept.mask_frames == [4] and (tmp_path / "out" / "masks" / "00004.png").exists()
        assert (tmp_path / "out" / "prompts.json").exists()
    finally:
        session.close()
