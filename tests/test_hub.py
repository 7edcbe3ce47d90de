"""Official checkpoints by name, downloaded from a real HTTP server on loopback."""
from __future__ import annotations

import hashlib
import http.server
import threading

import pytest
import torch
from oracle_free import official_state_dict

import vos
from vos.weights import hub


class _Server:
    """Serves one file with HTTP range support; the first ``drops`` responses stop half-way."""

    def __init__(self, path, data: bytes, drops: int = 0):
        server = self
        self.data, self.drops, self.requests = data, drops, []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                server.requests.append("HEAD")
                if self.path != path:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(server.data)))
                self.end_headers()

            def do_GET(self):
                server.requests.append(self.headers.get("Range"))
                if self.path != path:
                    self.send_error(404)
                    return
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                body = server.data[start:]
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body)))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(server.data) - 1}/{len(server.data)}")
                self.end_headers()
                if server.drops > 0:
                    server.drops -= 1
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:8]


def test_fetch_resumes_an_interrupted_download(tmp_path):
    data = bytes(range(256)) * 8000
    with _Server("/f.bin", data, drops=2) as server:
        dest = hub.fetch(f"{server.url}/f.bin", tmp_path / "f.bin", size=len(data), sha256_prefix=_checksum(data),
                         progress=False)
    assert dest.read_bytes() == data
    assert server.requests[0] is None and server.requests[1].startswith("bytes=")  # resumed with a range
    assert not (tmp_path / "f.bin.part").exists()


def test_fetch_rejects_a_file_of_the_wrong_size(tmp_path):
    data = b"x" * 1000
    with _Server("/f.bin", data) as server, pytest.raises(hub.DownloadError, match="1000 bytes, expected 999|could not download"):
        hub.fetch(f"{server.url}/f.bin", tmp_path / "f.bin", size=999, sha256_prefix=_checksum(data), progress=False,
                  attempts=2)
    assert not (tmp_path / "f.bin").exists()


def test_fetch_rejects_a_corrupt_download(tmp_path):
    data = b"y" * 5000
    with _Server("/f.bin", data) as server, pytest.raises(hub.DownloadError, match="sha256"):
        hub.fetch(f"{server.url}/f.bin", tmp_path / "f.bin", size=len(data), sha256_prefix="00000000", progress=False)
    assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()


def test_missing_remote_file_is_a_clear_error(tmp_path):
    with _Server("/f.bin", b"z") as server, pytest.raises(hub.DownloadError, match="404"):
        hub.fetch(f"{server.url}/missing.bin", tmp_path / "m.bin", size=1, sha256_prefix="", progress=False, attempts=1)


def test_load_model_by_official_name_downloads_once_into_the_cache(tmp_path, monkeypatch):
    ckpt = tmp_path / "src.pt"
    torch.save({"model": official_state_dict("sam2.1_hiera_tiny")}, ckpt)
    data = ckpt.read_bytes()
    monkeypatch.setitem(hub.OFFICIAL_CHECKPOINTS, "sam2.1_hiera_tiny",
                        hub.RemoteCheckpoint("092824/sam2.1_hiera_tiny.pt", len(data), _checksum(data)))
    monkeypatch.setenv("VOS_CACHE_DIR", str(tmp_path / "cache"))
    with _Server("/092824/sam2.1_hiera_tiny.pt", data, drops=1) as server:
        monkeypatch.setenv("VOS_CHECKPOINT_BASE_URL", server.url)
        model = vos.load_model("sam2.1_hiera_t", progress=False)
        requests_after_first = len(server.requests)
        vos.load_model("sam2.1_hiera_tiny", progress=False)
    assert model.config.name == "sam2.1_hiera_tiny"
    assert (tmp_path / "cache" / "sam2.1_hiera_tiny.pt").stat().st_size == len(data)
    assert len(server.requests) == requests_after_first  # the second load used the cache


def test_unknown_name_is_not_mistaken_for_a_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="sam3_hiera_tiny"):
        vos.load_model("sam3_hiera_tiny")


def test_a_file_without_a_published_size_takes_the_servers_and_its_whole_digest(tmp_path):
    data = bytes(range(256)) * 4000
    digest = hashlib.sha256(data).hexdigest()
    with _Server("/f.bin", data, drops=1) as server:
        dest = hub.fetch(f"{server.url}/f.bin", tmp_path / "f.bin", size=None, sha256_prefix=digest, progress=False)
        assert dest.read_bytes() == data and server.requests[0] == "HEAD"
        with pytest.raises(hub.DownloadError, match="sha256"):
            hub.fetch(f"{server.url}/f.bin", tmp_path / "g.bin", size=None, sha256_prefix="0" * 64, progress=False)
        with pytest.raises(hub.DownloadError, match="404"):
            hub.fetch(f"{server.url}/nothing.bin", tmp_path / "h.bin", size=None, sha256_prefix=digest, progress=False)


def test_every_official_name_is_a_config_and_its_file_is_named_after_it():
    from pathlib import Path

    from vos.model.config import get_config

    names = set(hub.OFFICIAL_CHECKPOINTS)
    assert {"edgetam", "efficienttam_ti", "efficienttam_s_512x512", "efficienttam_ti_2", "sam2.1_hiera_large"} <= names
    for name, remote in hub.OFFICIAL_CHECKPOINTS.items():
        assert get_config(name).name == name and Path(remote.path).stem == name  # variants are told by file name
        assert remote.base.startswith("https://") and len(remote.sha256_prefix) >= 8


def test_an_efficienttam_variant_by_name_downloads_and_loads_with_its_config(tmp_path, monkeypatch):
    ckpt = tmp_path / "src.pt"
    torch.save({"model": official_state_dict("efficienttam_ti_1")}, ckpt)
    data = ckpt.read_bytes()
    monkeypatch.setitem(hub.OFFICIAL_CHECKPOINTS, "efficienttam_ti_1",
                        hub.RemoteCheckpoint("efficienttam_ti_1.pt", None, hashlib.sha256(data).hexdigest(),
                                             hub.EFFICIENTTAM_URL))
    monkeypatch.setenv("VOS_CACHE_DIR", str(tmp_path / "cache"))
    with _Server("/efficienttam_ti_1.pt", data) as server:
        monkeypatch.setenv("VOS_CHECKPOINT_BASE_URL", server.url)
        model = vos.load_model("efficienttam_ti_1", progress=False)
    assert model.config.name == "efficienttam_ti_1" and model.config.memory_pool is not None
