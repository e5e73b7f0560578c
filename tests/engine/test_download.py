"""Downloading a checkpoint, against a hub stand-in served on 127.0.0.1 (tests never reach the internet)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from diffedit.cli import main
from diffedit.engine.download import DownloadError, download_model
from diffedit.engine.engine import Engine

REPO = "acme/tiny-dg"


class FakeHub:
    def __init__(self, folder: Path) -> None:
        self.files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
        self.files["pytorch_model.bin"] = b"pickle, never fetched"
        self.files["modeling_evil.py"] = b"import os"
        self.requests: list[str] = []
        self.corrupt: set[str] = set()
        self.cut_after: dict[str, int] = {}

    def listing(self) -> bytes:
        siblings = []
        for name, data in self.files.items():
            entry: dict[str, object] = {"rfilename": name, "size": len(data)}
            if name.endswith(".safetensors"):
                entry["lfs"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            siblings.append(entry)
        return json.dumps({"id": REPO, "siblings": siblings}).encode()


@pytest.fixture
def hub(tiny_checkpoint: Path) -> Iterator[tuple[FakeHub, str]]:
    state = FakeHub(tiny_checkpoint)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def do_GET(self) -> None:
            state.requests.append(self.path)
            if self.path.startswith(f"/api/models/{REPO}/revision/main"):
                return self._send(200, state.listing())
            prefix = f"/{REPO}/resolve/main/"
            name = self.path[len(prefix) :] if self.path.startswith(prefix) else ""
            if name not in state.files:
                return self._send(404, b"not found")
            data = state.files[name]
            if name in state.corrupt:
                data = data[:-1] + bytes([data[-1] ^ 1])
            start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
            body = data[start:]
            if name in state.cut_after:  # a dropped connection: fewer bytes than announced
                body = body[: state.cut_after.pop(name)]
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return None

        def _send(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_then_load(hub: tuple[FakeHub, str], tmp_path: Path) -> None:
    state, endpoint = hub
    dest = download_model(REPO, tmp_path / "m", endpoint=endpoint)
    names = sorted(p.name for p in dest.iterdir())
    assert "model.safetensors" in names and "config.json" in names and "tokenizer.json" in names
    assert "pytorch_model.bin" not in names and "modeling_evil.py" not in names
    assert not any(r.endswith(("pytorch_model.bin", ".py")) for r in state.requests)
    assert Engine.load(dest).name == "m"


def test_an_interrupted_download_resumes(hub: tuple[FakeHub, str], tmp_path: Path) -> None:
    state, endpoint = hub
    state.cut_after["model.safetensors"] = 1000
    with pytest.raises(DownloadError, match=r"model\.safetensors arrived with 1000 bytes"):
        download_model(REPO, tmp_path / "m", endpoint=endpoint)
    assert (tmp_path / "m" / "model.safetensors.part").stat().st_size == 1000
    assert not (tmp_path / "m" / "model.safetensors").exists()
    download_model(REPO, tmp_path / "m", endpoint=endpoint)
    assert any("model.safetensors" in r for r in state.requests)
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == state.files["model.safetensors"]


def test_a_corrupt_file_is_deleted_not_used(hub: tuple[FakeHub, str], tmp_path: Path) -> None:
    state, endpoint = hub
    state.corrupt.add("model.safetensors")
    with pytest.raises(DownloadError, match="failed its SHA-256 check"):
        download_model(REPO, tmp_path / "m", endpoint=endpoint)
    assert not (tmp_path / "m" / "model.safetensors").exists()


def test_unknown_repo_is_a_clear_error(hub: tuple[FakeHub, str], tmp_path: Path) -> None:
    _, endpoint = hub
    with pytest.raises(DownloadError, match="cannot list acme/missing: HTTP 404"):
        download_model("acme/missing", tmp_path / "m", endpoint=endpoint)


def test_cli_download(hub: tuple[FakeHub, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, endpoint = hub
    assert main(["download", REPO, "--to", str(tmp_path / "cli"), "--endpoint", endpoint]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "cli")
    assert (tmp_path / "cli" / "model.safetensors").is_file()
