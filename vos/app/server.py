"""The HTTP side of ``vos app``: the page, frames and masks as images, and a small JSON API over a
:class:`Session`. The standard library's threaded server is enough for one user on loopback: each request
gets a thread, jobs run in their own, and the page polls ``/api/state`` for their progress.
"""
from __future__ import annotations

import json
import re
import secrets
import shlex
import threading
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import urlsplit

import cv2
import numpy as np

from streams import is_network_url, redact_url
from streams.redact import remember_secrets

from ..errors import UnknownNameError, one_line, shown, user_errors
from .session import BusyError, Session, render_masks

HOST = "127.0.0.1"
MAX_BODY = 1 << 20  # bytes of a request body: the page's requests are a few hundred
_LARGEST = 1e9  # pixels of a click or a box corner: far beyond any frame, refused before any arithmetic
_STATIC = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8"),
           "/app.css": ("app.css", "text/css; charset=utf-8")}
# What the user's input or the machine's state can cause: shown on the page, the server goes on.
_USER_ERRORS = (*user_errors(), BusyError)


class App:
    """The model and the session the server serves, and the error that stopped the last attempt to open one.

    ``load_model`` builds a model from a checkpoint name or path (``None``: the embedded model); a failed
    open (an unreadable video, a bad checkpoint) keeps what was open before and says why. ``model_options``
    are the other ``vos track`` options that ``load_model`` applies (``--config``, ``--image-size``), for the
    replay command an export shows."""

    def __init__(self, load_model, video: str | None, checkpoint: str | None = None, precision: str = "float32",
                 model_options: list[str] | None = None) -> None:
        self._load_model = load_model
        self.precision = precision
        self.model_options = list(model_options or [])
        self.session: Session | None = None
        self.checkpoint: str | None = checkpoint or None  # the page offers it again if the first open fails
        self.model = None
        self.error: str | None = None
        self.opened = 0  # counts the videos opened: the page's image addresses change with it
        # ... and with the process: images are cached by address, and a restarted server counts from 0 again.
        self._instance = secrets.token_hex(4)
        self._lock = threading.Lock()
        try:
            self.open(video, checkpoint)
        except _USER_ERRORS as exc:
            self.error = one_line(exc)

    def open(self, video: str | None, checkpoint: str | None) -> None:
        """Open ``video`` with the model of ``checkpoint`` (loaded again only when it changes)."""
        with self._lock:
            if self.session is not None and self.session.job is not None and self.session.job.state == "running":
                raise BusyError(f"{self.session.job.kind} is running: wait for it or cancel it first")
            if video and is_network_url(str(video)):
                remember_secrets(str(video))
                raise ValueError(f"{redact_url(str(video))}: vos app opens video files and folders of frames; "
                                 "for a live stream use vos live")
            checkpoint = checkpoint or None
            model = self.model
            if model is None or checkpoint != self.checkpoint:
                model = self._load_model(checkpoint)
            if not video:
                raise FileNotFoundError("no video given: enter the path of a video file or a folder of frames")
            options = (["--checkpoint", checkpoint] if checkpoint else []) + self.model_options
            session = Session(model, video, self.precision, " ".join(shlex.quote(o) for o in options))
            if self.session is not None:
                self.session.close()
            self.session, self.model, self.checkpoint, self.error = session, model, checkpoint, None
            self.opened += 1
            threading.Thread(target=session.warm_up, daemon=True).start()

    def state(self) -> dict:
        session = self.session
        out = session.state() if session is not None else {"video": None, "objects": [], "prompts": [], "job": None}
        out["error"] = self.error
        out["opened"] = f"{self._instance}-{self.opened}"
        out["checkpoint"] = self.checkpoint  # None: the embedded model
        return out

    def close(self) -> None:
        if self.session is not None:
            self.session.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "AppServer"
    timeout = 30  # seconds a connection may stay silent: a body promised and not sent is answered, not awaited

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        if self.server.verbose:
            super().log_message(format, *args)

    # ------------------------------------------------------------------ plumbing
    def _send(self, status: int, body: bytes, content_type: str, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=3600" if cache else "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, value, status: int = 200) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def _error(self, status: int, text: str) -> None:
        self._json({"error": text}, status)

    def _trusted(self) -> bool:
        """Only pages served by this server may use it: the Host header must name the loopback address (a web
        page elsewhere cannot rebind a name of its own to it), and changes come as JSON, which a page of
        another origin cannot send without a preflight this server never grants."""
        port = self.server.server_address[1]
        if self.headers.get("Host") not in (f"{HOST}:{port}", f"localhost:{port}"):
            self.close_connection = True  # a body it may have sent is left unread
            self._error(HTTPStatus.FORBIDDEN, "this server answers only on its loopback address")
            return False
        return True

    def handle_one_request(self) -> None:
        """A request whose handling fails in a way no route foresaw (a bug) is still answered, with 500 and
        the error, and logged; the server goes on."""
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - the connection must get an answer
            self.log_error("%s", "".join(traceback.format_exception(exc)).rstrip())
            self.close_connection = True
            try:
                self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {one_line(exc)}")
            except OSError:
                pass

    # ------------------------------------------------------------------ routes
    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        if not self._trusted():
            return
        path = urlsplit(self.path).path
        app = self.server.app
        try:
            if path in _STATIC:
                name, kind = _STATIC[path]
                self._send(200, resources.files("vos.app").joinpath("static", name).read_bytes(), kind)
            elif path == "/api/state":
                self._json(app.state())
            elif m := re.fullmatch(r"/api/frame/(\d+)\.jpg", path):
                session = self._session()
                image = session.frame_image(int(m[1]))
                self._send(200, _encode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90]), "image/jpeg", cache=True)
            elif m := re.fullmatch(r"/api/masks/(\d+)\.png", path):
                session = self._session()
                layer = render_masks(session.frame_masks(int(m[1])), session.size, session.selected)
                self._send(200, _encode(".png", cv2.cvtColor(layer, cv2.COLOR_RGBA2BGRA)), "image/png", cache=True)
            elif m := re.fullmatch(r"/api/candidate/(\d+)\.jpg", path):
                self._send(200, _candidate_thumbnail(self._session(), int(m[1])), "image/jpeg")
            else:
                self._error(HTTPStatus.NOT_FOUND, f"no such page: {path}")
        except _USER_ERRORS as exc:
            self._error(HTTPStatus.BAD_REQUEST, one_line(exc))

    def do_POST(self) -> None:  # noqa: N802 - the base class's name
        if not self._trusted():
            return
        path = urlsplit(self.path).path
        body = self._body()
        if body is None:
            return
        if self.headers.get_content_type() != "application/json":
            self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send JSON (Content-Type: application/json)")
            return
        try:
            args = json.loads(body or b"{}")
            if not isinstance(args, dict):
                raise ValueError("the request body must be a JSON object")
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
            self._error(HTTPStatus.BAD_REQUEST, f"bad request body: {reason}")
            return
        action = _ACTIONS.get(path)
        if action is None:
            self._error(HTTPStatus.NOT_FOUND, f"no such action: {path}")
            return
        try:
            action(self.server.app, self._session if path != "/api/open" else None, args)
        except KeyError as exc:
            if isinstance(exc, UnknownNameError):
                self._error(HTTPStatus.BAD_REQUEST, one_line(exc))
            else:
                self._error(HTTPStatus.BAD_REQUEST, f"missing field {exc} in the request")
            return
        except _USER_ERRORS as exc:
            self._error(HTTPStatus.CONFLICT if isinstance(exc, BusyError) else HTTPStatus.BAD_REQUEST, one_line(exc))
            return
        self._json(self.server.app.state())

    def _body(self) -> bytes | None:
        """The request's body, or ``None`` once an error is answered: a length that is not a number of bytes,
        too large, or not sent in time. The connection is closed after such an answer, as where the body
        ends is not known."""
        if self.headers.get("Transfer-Encoding"):
            return self._refuse(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length, not in chunks")
        given = self.headers.get("Content-Length")
        if given is None:  # no body, or one whose end is unknown: none is read, and nothing after it
            self.close_connection = True
        text = "0" if given is None else given.strip()
        if not (text.isascii() and text.isdigit()):
            return self._refuse(HTTPStatus.BAD_REQUEST, f"Content-Length {text[:40]!r} is not a number of bytes")
        length = int(text)
        if length > MAX_BODY:
            return self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                f"Content-Length {length}: requests take at most {MAX_BODY} bytes")
        body = b""
        try:
            while len(body) < length and (chunk := self.rfile.read1(length - len(body))):
                body += chunk
        except TimeoutError:
            pass
        if len(body) < length:
            return self._refuse(HTTPStatus.REQUEST_TIMEOUT, f"the body ended after {len(body)} of the {length} bytes "
                                "its Content-Length promised")
        return body

    def _refuse(self, status: int, message: str) -> None:
        self.close_connection = True
        self._error(status, message)

    def _session(self) -> Session:
        session = self.server.app.session
        if session is None:
            raise FileNotFoundError("no video is open: open one first")
        return session


def _number(args: dict, key: str) -> float:
    value = args[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key} must be a number, got {shown(value)}")
    if not -_LARGEST <= value <= _LARGEST:  # NaN and the infinities too (JSON's Infinity, 1e400)
        raise ValueError(f"{key} must be a finite number of pixels (within ±{_LARGEST:g}), got {shown(value)}")
    return value


def _integer(args: dict, key: str) -> int:
    value = args[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be an integer, got {shown(value)}")
    return value


def _flag(args: dict, key: str, default: bool) -> bool:
    value = args.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, got {shown(value)}")
    return value


def _text(args: dict, key: str, default: str | None = None) -> str:
    """A string field: ``default`` when absent or null; without a default, a missing field is a ``KeyError``."""
    value = args[key] if default is None else args.get(key)
    if value is None and default is not None:
        return default
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string, got {shown(value)}")
    if "\0" in value:
        raise ValueError(f"{key} holds a NUL character")
    return value


# Clicks land on whole pixels: the exported prompts then read as the numbers the user clicked.
_ACTIONS = {
    "/api/open": lambda app, _, a: app.open(_text(a, "video", ""), _text(a, "checkpoint", "")),
    "/api/object": lambda app, s, a: s().add_object(),
    "/api/select": lambda app, s, a: s().select(_integer(a, "obj_id")),
    "/api/remove": lambda app, s, a: s().remove_object(_integer(a, "obj_id")),
    "/api/click": lambda app, s, a: s().click(_integer(a, "frame"), _integer(a, "obj_id"), round(_number(a, "x")),
                                              round(_number(a, "y")), _flag(a, "positive", True)),
    "/api/box": lambda app, s, a: s().box(_integer(a, "frame"), _integer(a, "obj_id"),
                                          [round(_number(a, k)) for k in ("x1", "y1", "x2", "y2")]),
    "/api/pick": lambda app, s, a: s().pick(_integer(a, "index")),
    "/api/clear": lambda app, s, a: s().clear(_integer(a, "frame"), _integer(a, "obj_id")),
    "/api/track": lambda app, s, a: s().start_track(),
    "/api/cancel": lambda app, s, a: s().cancel(),
    "/api/export": lambda app, s, a: s().start_export(_text(a, "folder"), _text(a, "masks", "davis"),
                                                      _flag(a, "overlay", True), _flag(a, "overwrite", False)),
}


def _encode(ext: str, image: np.ndarray, params: list[int] | None = None) -> bytes:
    ok, data = cv2.imencode(ext, np.ascontiguousarray(image), params or [])
    if not ok:
        raise ValueError(f"cannot encode an image as {ext}")
    return data.tobytes()


def _candidate_thumbnail(session: Session, index: int, width: int = 200) -> bytes:
    c = session.candidates
    if c is None or not 0 <= index < len(c.items):
        raise ValueError(f"no mask choice {index} on offer")
    image = session.frame_image(c.frame)
    layer = render_masks({c.obj_id: c.items[index][0]}, session.size)
    alpha = layer[..., 3:].astype(np.float32) / 255
    blended = (image * (1 - alpha) + layer[..., :3] * alpha).astype(np.uint8)
    h, w = session.size
    small = cv2.resize(blended, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    return _encode(".jpg", small[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])


class AppServer(ThreadingHTTPServer):
    """The server on ``127.0.0.1:port`` (0: a free port); ``url`` is the page's address."""

    daemon_threads = True

    def __init__(self, app: App, port: int = 8000, verbose: bool = False) -> None:
        self.app, self.verbose = app, verbose
        try:
            super().__init__((HOST, port), _Handler)
        except OSError as exc:
            if exc.errno == 98:  # EADDRINUSE
                raise OSError(exc.errno, f"port {port} on {HOST} is in use: choose another with --port (0 picks a "
                              "free one)") from None
            raise

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"


def serve(app: App, port: int = 8000) -> None:
    """Serve ``app`` until Ctrl-C."""
    server = AppServer(app, port)
    print(f"vos app: {server.url} (Ctrl-C to stop)", flush=True)
    if app.error:
        print(f"vos app: {app.error} (open another from the page)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        app.close()


def run_app(video: str | None, *, checkpoint: str | None = None, config: str | None = None,
            image_size: int | None = None, device: str | None = None, precision: str = "float32",
            port: int = 8000, compile: bool = False) -> None:
    """``vos app``: serve the page for ``video`` with the model of ``checkpoint`` (default: the embedded one;
    the page may open another, which ``config``, ``image_size`` and ``compile`` apply to as well) until Ctrl-C."""
    from ..weights.load import load_model

    def model(name: str | None):
        return load_model(name, config=config, image_size=image_size, device=device or "cpu", compile=compile)

    # The options an export's replay command repeats, as 'vos track' spells them.
    options = [str(o) for name, value in (("--config", config), ("--image-size", image_size))
               if value is not None for o in (name, value)]
    serve(App(model, video, checkpoint, precision=precision, model_options=options), port)
