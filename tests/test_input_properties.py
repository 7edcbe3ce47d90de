"""Property-based tests (hypothesis) over every parser of outside input: the app's JSON routes and headers
(over real HTTP on 127.0.0.1), the prompt JSON file, the --point/--box/--mask strings, the ONNX manifest and
stream URLs in messages. Valid input gives what the plain path gives; anything else a clear error naming the
field: never a traceback, a hang, a dropped connection or a partial file."""
from __future__ import annotations

import json
import math
import re
import socket
import string
from pathlib import Path

import numpy as np
import pytest
from app_client import running_app
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image
from tiny import tiny_config, tiny_tracking_model
from videos import moving_shapes, write_jpegs

from streams.redact import redact_url, remember_secrets
from vos.app import server as app_server
from vos.app.session import Session, render_masks
from vos.cli import _cli_prompts, build_parser, main
from vos.export.format import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    OnnxExportError,
    graph_specs,
)
from vos.export.runtime import read_manifest
from vos.jobs.live_sources import SourcesError, read_sources_file
from vos.jobs.manifest import ManifestError
from vos.jobs.manifest import read_manifest as read_manifest_file
from vos.model.config import ModelConfig
from vos.tracking.prompts import (
    FramePrompt,
    Prompt,
    PromptError,
    read_prompt_file,
    write_prompt_file,
)
from vos.weights.checkpoint import save_model

SIZE = (96, 160)  # (H, W) of the test video
FRAMES = 4
EXAMPLES = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# JSON as an attacker or a buggy client sends it: extreme numbers (JSON's NaN, Infinity, 1e400, 400-digit
# integers), strings, nesting.
scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.just(10**400) | st.floats()
           | st.sampled_from([1e400, -1e400, 1e300, -0.0]) | st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


# ---------------------------------------------------------------- the app over HTTP
@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_jpegs(moving_shapes(FRAMES, SIZE), tmp_path_factory.mktemp("video") / "shapes")


@pytest.fixture(scope="module")
def model():
    return tiny_tracking_model()


@pytest.fixture(scope="module")
def client(video, model, tmp_path_factory):
    missing = tmp_path_factory.mktemp("checkpoints") / "none"
    # A checkpoint named on the page is looked for in an empty folder: never a download.
    with running_app(video, lambda c: model if not c else app_server_load(missing / c)) as client:
        client.ok("/api/object")
        yield client


def app_server_load(path: Path):
    import vos

    return vos.load_model(path)


def post_raw(client, path: str, body: bytes, headers: dict[str, str] | None = None,
             half_close: bool = True) -> tuple[int, bytes]:
    """Send one request as bytes; the status and body of the answer (status 0: the connection was dropped)."""
    port = int(client.url.rsplit(":", 1)[1].strip("/"))
    head = {"Host": f"127.0.0.1:{port}", "Content-Type": "application/json", "Content-Length": str(len(body)),
            **(headers or {})}
    request = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items() if v is not None)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(request.encode("latin-1") + b"\r\n" + body)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
                if b"\r\n\r\n" in data:
                    header, _, rest = data.partition(b"\r\n\r\n")
                    length = next((int(line.split(b":")[1]) for line in header.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), None)
                    if length is not None and len(rest) >= length:
                        break
        except ConnectionResetError:
            pass
    if not data.startswith(b"HTTP/1."):
        return 0, data
    header, _, rest = data.partition(b"\r\n\r\n")
    return int(header.split()[1]), rest


def check_answer(status: int, body: bytes, allowed: set[int]) -> dict | None:
    """An HTTP answer with an allowed status; errors as JSON with a one-line message. The error, if any."""
    assert status in allowed, (status, body[:300])
    answer = json.loads(body)
    if status == 200:
        return None
    assert isinstance(answer["error"], str) and answer["error"] and "\n" not in answer["error"]
    assert "Traceback" not in answer["error"]
    return answer


def still_up(client) -> None:
    assert "objects" in client.state()


ROUTES = sorted(app_server._ACTIONS)
SAFE_STRINGS = st.sampled_from(["", "missing.mp4", "rtsp://viewer:pa55word@127.0.0.1:9/x", "a\0b", "~/nothing"])


def body_for(route: str, tmp: Path) -> st.SearchStrategy:
    """Any JSON body for a route; paths only in a temporary folder, never a real video or output place."""
    fields = {"/api/open": ["video", "checkpoint"], "/api/export": ["folder", "masks", "overlay", "overwrite"],
              "/api/click": ["frame", "obj_id", "x", "y", "positive"],
              "/api/box": ["frame", "obj_id", "x1", "y1", "x2", "y2"]}.get(route, ["frame", "obj_id", "index"])
    values = json_values
    if route in ("/api/open", "/api/export"):  # strings name files: keep them away from the real disk
        folder = st.text(string.ascii_letters, min_size=1, max_size=8).map(lambda n: str(tmp / n))
        values = st.one_of(scalars.filter(lambda v: not isinstance(v, str)), SAFE_STRINGS, folder)
    return st.fixed_dictionaries({}, optional={f: values for f in fields}) | st.dictionaries(st.text(max_size=6), values,
                                                                                              max_size=3)


@EXAMPLES
@given(data=st.data())
def test_every_route_answers_any_json_body(client, tmp_path_factory, data):
    route = data.draw(st.sampled_from([r for r in ROUTES if r != "/api/track"]), label="route")
    body = data.draw(body_for(route, tmp_path_factory.getbasetemp() / "app-out"), label="body")
    status, answer = post_raw(client, route, json.dumps(body).encode())
    check_answer(status, answer, {200, 400, 404, 409})
    if route == "/api/export" and status == 200:
        client.wait_job()
    still_up(client)


WRONG = {
    "number": st.one_of(st.text(max_size=5), st.booleans(), st.none(), st.lists(st.integers(), max_size=2),
                        st.sampled_from([math.inf, -math.inf, math.nan, 1e400, 10**400, 1e12])),
    "integer": st.one_of(st.text(max_size=5), st.booleans(), st.none(), st.floats(), st.lists(st.integers(), max_size=2)),
    "flag": st.one_of(st.text(max_size=5), st.integers(), st.none(), st.floats()),
    "string": st.one_of(st.integers(), st.floats(), st.booleans(), st.lists(st.text(max_size=3), max_size=2)),
}
FIELDS = [  # route, a valid body, the field to spoil, its kind
    *[("/api/click", {"frame": 0, "obj_id": 1, "x": 10, "y": 10}, f, k)
      for f, k in [("frame", "integer"), ("obj_id", "integer"), ("x", "number"), ("y", "number"), ("positive", "flag")]],
    *[("/api/box", {"frame": 0, "obj_id": 1, "x1": 5, "y1": 5, "x2": 50, "y2": 50}, f, "number")
      for f in ("x1", "y1", "x2", "y2")],
    ("/api/select", {"obj_id": 1}, "obj_id", "integer"), ("/api/remove", {"obj_id": 1}, "obj_id", "integer"),
    ("/api/pick", {"index": 0}, "index", "integer"), ("/api/clear", {"frame": 0, "obj_id": 1}, "frame", "integer"),
    ("/api/open", {"video": "x"}, "video", "string"), ("/api/open", {"video": "x"}, "checkpoint", "string"),
    ("/api/export", {"folder": "x"}, "folder", "string"), ("/api/export", {"folder": "x"}, "masks", "string"),
    ("/api/export", {"folder": "x"}, "overlay", "flag"), ("/api/export", {"folder": "x"}, "overwrite", "flag"),
]


@EXAMPLES
@given(data=st.data())
def test_a_wrong_field_is_answered_400_naming_it(client, data):
    route, valid, field, kind = data.draw(st.sampled_from(FIELDS), label="field")
    value = data.draw(WRONG[kind], label="value")
    status, body = post_raw(client, route, json.dumps({**valid, field: value}).encode())
    error = check_answer(status, body, {400})["error"]
    assert field in error, error
    still_up(client)


@pytest.fixture(scope="module")
def plain(model, video):
    """The plain path: a Session on the same model and video, called directly."""
    session = Session(model, video)
    yield session
    session.close()


@EXAMPLES
@given(frame=st.integers(0, FRAMES - 1), x=st.floats(0, SIZE[1]), y=st.floats(0, SIZE[0]), positive=st.booleans())
def test_a_valid_click_shows_what_the_session_computes(client, plain, frame, x, y, positive):
    obj = client.ok("/api/object")["selected"]  # a new object, on both paths (ids and colours alike)
    while max(plain.objects, default=0) < obj:
        plain.add_object()
    try:
        client.ok("/api/click", {"frame": frame, "obj_id": obj, "x": x, "y": y, "positive": positive})
        plain.click(frame, obj, round(x), round(y), positive)
        np.testing.assert_array_equal(client.layer(frame), render_masks(plain.frame_masks(frame), plain.size, obj))
        assert client.state()["prompts"][-1]["points"] == [[round(x), round(y)]]
    finally:
        client.ok("/api/remove", {"obj_id": obj})
        plain.remove_object(obj)


header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=20)


@EXAMPLES
@given(length=st.one_of(header_text, st.integers(-(10**6), 10**12).map(str)), body=st.binary(max_size=40),
       chunked=st.booleans(), content_type=st.one_of(st.none(), st.just("application/json"), header_text),
       host=st.one_of(st.none(), st.just("ours"), header_text))
def test_any_headers_get_an_answer(client, length, body, chunked, content_type, host):
    port = int(client.url.rsplit(":", 1)[1].strip("/"))
    headers = {"Content-Length": length, "Content-Type": content_type, "Transfer-Encoding": "chunked" if chunked else None,
               "Host": f"127.0.0.1:{port}" if host == "ours" else host}
    status, answer = post_raw(client, "/api/select", body, headers)
    check_answer(status, answer, {200, 400, 403, 404, 408, 411, 413, 415})
    still_up(client)


def test_a_body_that_never_comes_is_answered_in_time(client, monkeypatch):
    monkeypatch.setattr(app_server._Handler, "timeout", 0.5)
    status, body = post_raw(client, "/api/select", b'{"obj_id"', {"Content-Length": "100"}, half_close=False)
    assert status == 408 and "9 of the 100 bytes" in json.loads(body)["error"]
    status, body = post_raw(client, "/api/click", b'{"frame": 0, "obj_id": 1, "x": Infinity, "y": 10}')
    assert status == 400 and "x must be a finite number" in json.loads(body)["error"]
    for length in ("abc", "-5"):
        status, body = post_raw(client, "/api/select", b"{}", {"Content-Length": length})
        assert status == 400 and f"Content-Length {length!r}" in json.loads(body)["error"]
    still_up(client)


# ---------------------------------------------------------------- the prompt file
coordinates = st.floats(-1e6, 1e6, width=32)
valid_entries = st.lists(st.fixed_dictionaries(
    {"frame": st.integers(0, 10**6), "obj_id": st.integers(0, 10**6)},
    optional={"box": st.lists(coordinates, min_size=4, max_size=4)},
).flatmap(lambda e: st.lists(st.tuples(coordinates, coordinates, st.sampled_from([0, 1])), min_size=0, max_size=4).map(
    lambda clicks: {**e, **({"points": [[x, y] for x, y, _ in clicks], "labels": [v for *_, v in clicks]} if clicks else {})})),
    min_size=1, max_size=4)


def same_prompt(a: Prompt, b: Prompt) -> bool:
    return all((x is None and y is None) or (x is not None and y is not None and np.array_equal(x, y))
               for x, y in ((a.points, b.points), (a.labels, b.labels), (a.box, b.box), (a.mask, b.mask)))


@EXAMPLES
@given(entries=valid_entries)
def test_a_valid_prompt_file_reads_as_the_prompts_it_holds(tmp_path, entries):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(entries))
    read = read_prompt_file(path)
    plain = [FramePrompt(e["frame"], e["obj_id"], Prompt.make(e.get("points"), e.get("labels"), e.get("box")))
             for e in entries]
    assert [(p.frame, p.obj_id) for p in read] == [(p.frame, p.obj_id) for p in plain]
    assert all(same_prompt(a.prompt, b.prompt) for a, b in zip(read, plain))
    again = read_prompt_file(write_prompt_file(tmp_path / "again.json", read))
    assert all(same_prompt(a.prompt, b.prompt) for a, b in zip(read, again))


@EXAMPLES
@given(entries=valid_entries, data=st.data())
def test_a_spoiled_prompt_file_is_refused_naming_the_prompt_and_field(tmp_path, entries, data):
    i = data.draw(st.integers(0, len(entries) - 1), label="prompt")
    field = data.draw(st.sampled_from(["frame", "obj_id", "points", "labels", "box", "mask", "colour"]), label="field")
    entries[i][field] = data.draw(json_values, label="value")
    path = tmp_path / "p.json"
    path.write_text(json.dumps(entries))
    try:
        read_prompt_file(path)
    except PromptError as exc:
        message = str(exc)
        assert message.startswith(f"{path}, prompt ") and "\n" not in message
        words = {"obj_id": "object id", "colour": "unknown keys", "labels": "label"}.get(field, field)
        assert words in message or f"prompt {i}" not in message, message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]  # reading writes nothing


def read_or_refused(read, error: type[Exception], path: Path):
    """``read(path)``, or ``None`` where it refused the file with ``error``, in one line that names the file."""
    try:
        return read(path)
    except error as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc), str(exc)
        return None


@EXAMPLES
@given(content=st.one_of(st.binary(max_size=60), json_values.map(lambda v: json.dumps(v).encode())))
def test_any_prompt_file_reads_or_is_refused_naming_it(tmp_path, content):
    path = tmp_path / "p.json"
    path.write_bytes(content)
    prompts = read_or_refused(read_prompt_file, PromptError, path)
    assert prompts is None or (prompts and all(isinstance(p, FramePrompt) for p in prompts))


def test_a_prompt_file_nested_too_deeply_is_refused(tmp_path):
    path = tmp_path / "p.json"
    path.write_text("[" * 100_000)
    with pytest.raises(PromptError, match="not valid JSON: nested too deeply"):
        read_prompt_file(path)


# ---------------------------------------------------------------- --point, --box and --mask
def cli_prompt(option: str, value: str, obj: int = 1):
    args = build_parser().parse_args(["track", "clip", "--obj", str(obj), f"--{option}={value}"])
    return _cli_prompts(args)


numbers_text = st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers().map(str),
                                  st.text(max_size=4)), min_size=0, max_size=5).map(",".join)


@EXAMPLES
@given(text=st.one_of(st.text(max_size=16), numbers_text), option=st.sampled_from(["point", "box"]))
def test_point_and_box_strings_give_the_numbers_or_an_error_naming_the_option(text, option):
    try:
        (got,) = cli_prompt(option, text)
    except ValueError as exc:  # PromptError is one
        assert f"--{option}" in str(exc) and "\n" not in str(exc)
        return
    values = [float(v) for v in text.split(",")]
    if option == "point":
        assert got.prompt.points.tolist() == [np.float32(values[:2]).tolist()]
        assert got.prompt.labels.tolist() == [int(values[2]) if len(values) == 3 else 1]
    else:
        assert got.prompt.box.tolist() == np.float32(values).tolist()


@pytest.fixture(scope="module")
def mask_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("masks")
    mask = np.zeros(SIZE, np.uint8)
    mask[10:40, 20:60] = 3
    Image.fromarray(mask).save(folder / "index.png")
    (folder / "text.png").write_text("not a png")
    (folder / "empty.png").write_bytes(b"")
    (folder / "dir.png").mkdir()
    return folder


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.one_of(st.sampled_from(["index.png", "text.png", "empty.png", "dir.png", "missing.png"]), st.text(max_size=10)),
       obj=st.integers(0, 300))
def test_mask_paths_give_the_mask_or_an_error_naming_the_file(mask_files, name, obj):
    assume("\0" not in name)
    try:
        (got,) = cli_prompt("mask", str(mask_files / name), obj)
    except ValueError as exc:
        assert str(mask_files / name) in str(exc) or "--mask" in str(exc), exc
        return
    assert name == "index.png" and got.prompt.mask.shape == SIZE


def test_vos_track_names_a_bad_point_before_loading_anything(tmp_path, capsys):
    assert main(["track", str(tmp_path), "--point=1e400,5", "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "--point '1e400,5'" in capsys.readouterr().err


# ---------------------------------------------------------------- the ONNX manifest
def valid_manifest() -> dict:
    config = tiny_config()
    graphs = {name: {**spec.to_dict(), "sha256": "0" * 64, "max_abs_diff_vs_torch": 1e-6}
              for name, spec in graph_specs(config).items()}
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "model": config.name, "image_size": config.image_size,
            "config": config.to_dict(), "graphs": graphs}


def paths_in(value, prefix=()):
    """Every key path of a JSON value."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from paths_in(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from paths_in(v, (*prefix, i))


ALL_PATHS = [p for p in paths_in(valid_manifest()) if p]


@EXAMPLES
@given(where=st.sampled_from(ALL_PATHS), value=json_values, delete=st.booleans())
def test_a_spoiled_manifest_is_refused_naming_the_field(tmp_path, where, value, delete):
    manifest = valid_manifest()
    parent = manifest
    for key in where[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[where[-1]]
    else:
        parent[where[-1]] = value
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    try:
        read = read_manifest(tmp_path)
    except OnnxExportError as exc:
        message = str(exc)
        assert message.startswith(str(tmp_path / MANIFEST)) and "\n" not in message
        if where[0] == "config" and len(where) == 2 and not delete and "model config field" in message:
            assert f"{where[1]} = " in message, message  # names the field and its value
        return
    assert read.data == json.loads(json.dumps(manifest)) and read.config == ModelConfig.from_dict(manifest["config"])  # the plain path's


def test_the_manifest_of_the_issue_names_the_field_and_value(tmp_path):
    manifest = valid_manifest()
    manifest["config"]["d_model"] = "abc"
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(OnnxExportError, match="model config field d_model = 'abc' is not an integer"):
        read_manifest(tmp_path)


@EXAMPLES
@given(content=st.binary(max_size=60))
def test_any_manifest_bytes_are_read_or_refused(tmp_path, content):
    (tmp_path / MANIFEST).write_bytes(content)
    with pytest.raises(OnnxExportError, match=f"^{tmp_path / MANIFEST}"):
        read_manifest(tmp_path)


# ---------------------------------------------------------------- passwords in stream URLs
secret_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12)
urls = st.builds(  # (the URL, its password, the URL without its user information)
    lambda scheme, user, password, host, rest: (f"{scheme}://{user}:{password}@{host}{rest}", password,
                                                f"{scheme}://{host}{rest}"),
    st.sampled_from(["rtsp", "rtsps", "rtmp", "http", "https", "srt"]), st.text(string.ascii_letters, min_size=1, max_size=6),
    secret_text, st.sampled_from(["127.0.0.1", "cam.local", "[::1]"]),
    st.tuples(st.sampled_from(["", ":554", ":9"]), st.text(string.ascii_lowercase + "/", max_size=8),
              st.sampled_from(["", "?channel=2", "?a=1&b=2"])).map(lambda t: f"{t[0]}/{t[1]}{t[2]}"))


@EXAMPLES
@given(url=urls)
def test_no_password_survives_in_a_message_quoting_its_url(url):
    url, password, visible = url
    # "***@" is what stands in for the user information: a password of "@" is in it without being leaked.
    assume(password not in visible and password not in "***@" and not password.isspace())
    # By pattern alone, a password that a URL can hold as written (no spaces or quotes) is hidden ...
    if not re.search(r"[\s'\"<>]", password):
        assert password not in redact_url(url)
    # ... and once vos has seen the URL, any password, however a message quotes it.
    remember_secrets(url)
    for message in (url, repr(url), f"cannot open '{url}': refused", str(Path(url)), f"auth failed for {password}"):
        assume(len(password) >= 3)
        assert password not in redact_url(message), message


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(url=urls)
def test_the_app_and_commands_never_print_a_password(client, tmp_path, capsys, url):
    url, password, visible = url
    assume(len(password) >= 3 and password not in visible and "\0" not in url)
    status, body = post_raw(client, "/api/open", json.dumps({"video": url}).encode())
    assert status == 400 and password not in json.loads(body)["error"]
    checkpoint = tmp_path / "tiny.pt"
    if not checkpoint.exists():
        save_model(tiny_tracking_model(), checkpoint)
    for command in (["track", url, "--point", "5,5"], ["segment", url], ["live", url, "--max-reconnects", "0"]):
        assert main([*command, "--checkpoint", str(checkpoint), "--threads", "1"]) == 2
        printed = "".join(capsys.readouterr())
        assert password not in printed and "***" in printed, printed


# ---------------------------------------------------------------- the manifest of vos track --manifest
manifest_prompts = valid_entries.map(lambda entries: [{**e, "obj_id": e["obj_id"] % 255 + 1} for e in entries])


@pytest.fixture(scope="module")
def manifest_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("manifest")
    write_jpegs(moving_shapes(2, (16, 16)), base / "clip")
    return base


def _manifest_file(base: Path, lines: list[str]) -> Path:
    path = base / "m.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@EXAMPLES
@given(prompts=st.lists(manifest_prompts, min_size=1, max_size=3), as_file=st.booleans())
def test_a_valid_manifest_reads_as_the_entries_it_holds(manifest_dir, prompts, as_file):
    lines = []
    for i, entry_prompts in enumerate(prompts):
        spec = entry_prompts
        if as_file:
            spec = f"p{i}.json"
            (manifest_dir / spec).write_text(json.dumps(entry_prompts))
        lines.append(json.dumps({"video": "clip", "prompts": spec, "out": f"out/{i}"}))
    entries = read_manifest_file(_manifest_file(manifest_dir, lines))
    assert [e.line for e in entries] == list(range(1, len(prompts) + 1))
    for entry, entry_prompts in zip(entries, prompts):
        assert entry.video == manifest_dir / "clip" and entry.out == manifest_dir / "out" / str(entry.line - 1)
        read = entry.read_prompts()
        assert [(p.frame, p.obj_id) for p in read] == [(e["frame"], e["obj_id"]) for e in entry_prompts]
    assert not (manifest_dir / "out").exists()  # reading writes nothing


@EXAMPLES
@given(lines=st.lists(st.one_of(
    json_values.map(json.dumps),
    st.fixed_dictionaries({"video": json_values | st.just("clip"), "prompts": json_values,
                           "out": json_values | st.just("o")}).map(json.dumps),
    st.text(max_size=20)), min_size=1, max_size=4))
def test_any_manifest_reads_or_is_refused_naming_file_and_line(manifest_dir, lines):
    lines = [line.replace("\r", "").replace("\n", "") for line in lines]
    path = _manifest_file(manifest_dir, lines)
    try:
        entries = read_manifest_file(path)
    except ManifestError as exc:
        message = str(exc)
        assert "\n" not in message and "Traceback" not in message
        assert f"{path}:" in message or message.endswith("no entries (one JSON object a line: "
                                                         '{"video": ..., "prompts": ..., "out": ...})'), message
    else:
        assert entries and all(e.video.exists() for e in entries)


# ---------------------------------------------------------------- the sources file of vos live --sources
live_prompts = manifest_prompts.map(lambda entries: [{**e, "frame": 0} for e in entries])


@EXAMPLES
@given(prompts=st.lists(live_prompts, min_size=1, max_size=3))
def test_a_valid_sources_file_reads_as_the_sources_it_holds(tmp_path, prompts):
    path = tmp_path / "sources.json"
    items = [{"source": f"rtsp://cam{i}.local/stream", "prompts": p, "out": f"out{i}.mp4"} for i, p in enumerate(prompts)]
    path.write_text(json.dumps(items))
    entries = read_sources_file(path)
    assert [e.source for e in entries] == [item["source"] for item in items]
    assert [e.out for e in entries] == [tmp_path / item["out"] for item in items]
    assert all(p.frame == 0 for e in entries for p in e.prompts)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sources.json"]  # reading writes nothing


@EXAMPLES
@given(content=st.one_of(
    st.binary(max_size=60), json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(st.fixed_dictionaries({"source": json_values | st.just("0"), "prompts": json_values},
                                   optional={"out": json_values}), min_size=1, max_size=3).map(
        lambda v: json.dumps(v).encode())))
def test_any_sources_file_reads_or_is_refused_naming_it(tmp_path, content):
    path = tmp_path / "sources.json"
    path.write_bytes(content)
    entries = read_or_refused(read_sources_file, SourcesError, path)
    assert entries is None or (entries and all(e.prompts for e in entries))
