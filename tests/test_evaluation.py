"""J&F as the official DAVIS and SA-V tools compute it: real data against their numbers, and edge cases."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from evaluation import statistics
from evaluation.benchmark import evaluate_davis, evaluate_sav
from evaluation.davis import evaluate_sequence, read_sequence_list
from evaluation.metrics import boundary_f, region_similarity, tolerance_pixels


@pytest.fixture(scope="module")
def osvos_report(shared_dir):
    data = shared_dir / "data"
    sequences = read_sequence_list(data / "davis2016-dev" / "ImageSets" / "dev.txt")
    return evaluate_davis(data / "davis2016-dev" / "Annotations" / "480p", data / "osvos-dev", sequences, processes=2)


@pytest.mark.slow
def test_davis_per_object_statistics_equal_official(shared_dir, osvos_report):
    official = {r["object"]: r for r in csv.DictReader(open(shared_dir / "data/osvos-dev/official-davis2017-evaluation.csv"))}
    assert {o.name for o in osvos_report.objects} == set(official) - {"GLOBAL"}
    for obj in osvos_report.objects:
        for column, value in obj.summary().items():
            # The official file is written to 10 decimals.
            assert abs(value - float(official[obj.name][column])) <= 1e-9, (obj.name, column)
    for column, value in osvos_report.global_scores().items():
        assert abs(value - float(official["GLOBAL"][column])) <= 1e-9, column


@pytest.mark.slow
def test_sav_per_object_scores_equal_official(shared_dir, tmp_path):
    data = shared_dir / "data" / "sav-example"
    report = evaluate_sav(data / "gt", data / "pred_shift5", processes=1)
    official = list(csv.DictReader(open(data / "official-sav-evaluator.csv")))
    by_object = {(r["video"], r["object"]): r for r in official}
    for obj in report.objects:
        row = by_object[(obj.sequence, obj.object_id)]
        assert abs(100 * obj.J.mean() - float(row["J"])) <= 1e-9
        assert abs(100 * obj.F.mean() - float(row["F"])) <= 1e-9
    written = list(csv.DictReader(open(report.write_sav_csv(tmp_path))))
    for column in ("J&F", "J", "F"):
        assert abs(float(written[0][column]) - float(by_object[("GLOBAL", "")][column])) <= 1e-9


def test_davis_csv_files_have_official_names_and_columns(osvos_report, tmp_path):
    global_csv, seq_csv = osvos_report.write_davis_csv(tmp_path, "dev")
    assert global_csv.name == "global_results-dev.csv" and seq_csv.name == "per-sequence_results-dev.csv"
    rows = list(csv.reader(open(global_csv)))
    assert rows[0] == ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
    assert rows[1][0] == "0.806"
    seq_rows = list(csv.reader(open(seq_csv)))
    assert seq_rows[0] == ["Sequence", "J-Mean", "F-Mean"] and seq_rows[1][0] == "blackswan_1"


def test_plot_is_written(osvos_report, tmp_path):
    path = osvos_report.plot(tmp_path / "jf.png")
    assert path.stat().st_size > 1000 and not list(tmp_path.glob(".*tmp*"))


@pytest.mark.parametrize("series", range(3))
def test_the_chart_draws_every_objects_scores_to_scale(osvos_report, tmp_path, series):
    """Each bar of a colour rises to its object's score: the top of each run of columns in that colour."""
    from PIL import Image

    from evaluation.plot import _PLOT_HEIGHT, SERIES

    key, colour = SERIES[series]
    image = np.asarray(Image.open(osvos_report.plot(tmp_path / "jf.png")))
    painted = (image == colour).all(axis=2)
    frame = (image == 200).all(axis=2)  # the legend's frame (light grey): its swatches are no bars
    ys, xs = np.flatnonzero(frame.sum(axis=1) > 100), np.flatnonzero(frame.sum(axis=0) > 40)
    painted[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = False
    columns = np.flatnonzero(painted.any(axis=0))
    runs = np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1)
    assert len(runs) == len(osvos_report.objects)
    bottom = max(np.flatnonzero(painted[:, run[len(run) // 2]])[-1] for run in runs) + 1
    for run, scores in zip(runs, (o.summary() for o in osvos_report.objects)):
        top = np.flatnonzero(painted[:, run[len(run) // 2]])[0]
        assert abs((bottom - top) / _PLOT_HEIGHT - scores[key]) < 2 / _PLOT_HEIGHT, (key, scores[key])


# ---------------------------------------------------------------------------------------------- edge cases
def _box(h=40, w=60, y0=10, y1=30, x0=10, x1=40):
    m = np.zeros((1, h, w), bool)
    m[0, y0:y1, x0:x1] = True
    return m


def test_both_empty_scores_one():
    empty = np.zeros((1, 40, 60), bool)
    assert region_similarity(empty, empty)[0] == 1.0 and boundary_f(empty, empty)[0] == 1.0


def test_empty_prediction_or_empty_ground_truth_scores_zero():
    empty = np.zeros((1, 40, 60), bool)
    assert region_similarity(_box(), empty)[0] == 0.0 and boundary_f(_box(), empty)[0] == 0.0
    assert region_similarity(empty, _box())[0] == 0.0 and boundary_f(empty, _box())[0] == 0.0


def test_void_pixels_are_ignored_by_j_and_f():
    gt, pred = _box(), _box(x1=50)
    void = np.zeros_like(gt)
    void[0, :, 40:] = True
    assert region_similarity(gt, pred, void)[0] == 1.0
    assert boundary_f(gt, pred, void)[0] == 1.0
    assert region_similarity(gt, pred)[0] < 1.0


def test_reference_box_example():
    gt = np.zeros((1, 480, 854), bool)
    gt[0, 100:200, 100:300] = True
    pred = np.zeros_like(gt)
    pred[0, 100:200, 100:310] = True
    assert round(region_similarity(gt, pred)[0], 3) == 0.952
    assert round(boundary_f(gt, pred)[0], 3) == 0.848


def test_tolerance_is_a_rounded_up_share_of_the_diagonal():
    assert [tolerance_pixels(*s) for s in [(480, 854), (480, 910), (480, 1152), (848, 480), (1080, 1920)]] == [8, 9, 10, 8, 18]


def test_decay_bins_match_official_and_stay_correct_past_256_frames():
    values = np.linspace(1, 0, 48)
    edges = [0, 12, 24, 35, 47]
    assert statistics.decay(values) == pytest.approx(values[edges[0]:edges[1] + 1].mean() - values[edges[3]:edges[4] + 1].mean())
    long = np.linspace(1, 0, 300)
    assert statistics.decay(long) == pytest.approx(long[:76].mean() - long[224:].mean())
    assert statistics.recall(np.array([0.5, 0.51, 0.9, 0.2])) == 0.5


def _write_seq(folder, frames):
    folder.mkdir(parents=True)
    for i, m in enumerate(frames):
        img = Image.fromarray(m.astype(np.uint8), mode="P")
        img.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 9))
        img.save(folder / f"{i:05d}.png")


def _frames(n=5, ids=(1,)):
    out = []
    for _ in range(n):
        m = np.zeros((40, 60), np.uint8)
        for k in ids:
            m[10 * k - 8: 10 * k, 15 * k: 15 * k + 12] = k
        out.append(m)
    return out


def test_object_missing_from_prediction_scores_zero_where_present(tmp_path):
    _write_seq(tmp_path / "gt" / "s", _frames(ids=(1, 2)))
    _write_seq(tmp_path / "pred" / "s", _frames(ids=(1,)))
    scores = evaluate_sequence(tmp_path / "gt" / "s", tmp_path / "pred" / "s")
    assert [s.J.tolist() for s in scores] == [[1.0] * 3, [0.0] * 3]


def test_more_predicted_objects_than_ground_truth_is_a_clear_error(tmp_path):
    _write_seq(tmp_path / "gt" / "s", _frames(ids=(1,)))
    _write_seq(tmp_path / "pred" / "s", _frames(ids=(1, 2)))
    with pytest.raises(ValueError, match="object id 2, but the sequence has 1 object"):
        evaluate_sequence(tmp_path / "gt" / "s", tmp_path / "pred" / "s")


def test_missing_prediction_file_is_named(tmp_path):
    _write_seq(tmp_path / "gt" / "s", _frames())
    _write_seq(tmp_path / "pred" / "s", _frames())
    (tmp_path / "pred" / "s" / "00002.png").unlink()
    with pytest.raises(FileNotFoundError, match="00002.png"):
        evaluate_sequence(tmp_path / "gt" / "s", tmp_path / "pred" / "s")


def test_first_and_last_frames_are_not_scored(tmp_path):
    gt, pred = _frames(), _frames()
    pred[0][:] = 0
    pred[-1][:] = 0
    _write_seq(tmp_path / "gt" / "s", gt)
    _write_seq(tmp_path / "pred" / "s", pred)
    (score,) = evaluate_sequence(tmp_path / "gt" / "s", tmp_path / "pred" / "s")
    assert score.J.tolist() == [1.0, 1.0, 1.0]


def test_void_in_ground_truth_is_background_in_semi_supervised_task(tmp_path):
    gt = _frames()
    for m in gt:
        m[30:, 40:] = 255
    _write_seq(tmp_path / "gt" / "s", gt)
    _write_seq(tmp_path / "pred" / "s", _frames())
    (score,) = evaluate_sequence(tmp_path / "gt" / "s", tmp_path / "pred" / "s")
    assert score.J.tolist() == [1.0, 1.0, 1.0]


def test_runs_of_frames_scored_by_several_processes_equal_one_process(tmp_path):
    rng = np.random.default_rng(0)
    gt = _frames(n=30, ids=(1, 2))
    pred = [np.where(rng.random(m.shape) > 0.9, 0, m).astype(np.uint8) for m in gt]
    for name in ("a", "b"):
        _write_seq(tmp_path / "gt" / name, gt)
        _write_seq(tmp_path / "pred" / name, pred)
    one = evaluate_davis(tmp_path / "gt", tmp_path / "pred", processes=1)
    two = evaluate_davis(tmp_path / "gt", tmp_path / "pred", processes=2)
    assert [o.name for o in two.objects] == ["a_1", "a_2", "b_1", "b_2"] == [o.name for o in one.objects]
    for a, b in zip(one.objects, two.objects):
        assert len(a.J) == 28 and np.array_equal(a.J, b.J) and np.array_equal(a.F, b.F)
