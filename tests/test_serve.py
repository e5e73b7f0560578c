"""``diffedit serve`` in a subprocess on 127.0.0.1 (the bundled demo model); ``--server`` against it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from diffedit.cli import main
from diffedit.document.blocks import parse_blocks
from diffedit.engine.remote import RemoteEngine
from diffedit.engine.types import Cancelled, CancelToken, EngineError, Frame, GenerationSettings
from diffedit.engine.wire import job_from_json, job_to_json
from diffedit.rewrites import build_job

DOC = "# Title\n\nFirst paragraph with some words in it.\n\n- item a\n- item b\n\nLast paragraph.\n"
KEY_ENV = "DIFFEDIT_TEST_SERVE_KEY"
KEY = "s3cret-for-the-tests"


@dataclass
class Served:
    url: str
    process: subprocess.Popen[str]
    log: Path  # the server's stderr: one line per request, and one per cancelled job

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8")


def start_server(tmp: Path, *extra: str, env: dict[str, str] | None = None) -> Served:
    log = tmp / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "diffedit", "serve", "--port", "0", "--device", "cpu", *extra],
        stdout=subprocess.PIPE,
        stderr=log.open("w", encoding="utf-8"),
        text=True,
        env=os.environ | (env or {}),
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # "diffedit serve: NAME on http://127.0.0.1:PORT", once it listens
    assert " on http://" in line, (line, log.read_text(encoding="utf-8"))
    url = line.strip().rsplit(" ", 1)[1]
    with urllib.request.urlopen(
        urllib.request.Request(url + "/health", headers={"Authorization": f"Bearer {KEY}"}), timeout=30
    ) as r:
        assert json.loads(r.read())["status"] == "ok"
    return Served(url, process, log)


def stop(served: Served) -> None:
    if served.process.poll() is None:
        served.process.terminate()  # SIGTERM: SIGINT may be ignored where the test runs in the background
        served.process.wait(timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for the module, requiring a key (read from KEY_ENV in its environment)."""
    served = start_server(tmp_path_factory.mktemp("serve"), "--api-key-env", KEY_ENV, env={KEY_ENV: KEY})
    yield served
    stop(served)


@pytest.fixture
def md(tmp_path: Path) -> Path:
    p = tmp_path / "doc.md"
    p.write_text(DOC, encoding="utf-8")
    return p


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIFFEDIT_API_KEY", KEY)


def paragraph_job(steps: int, seed: int = 7) -> object:
    block = parse_blocks(DOC)[1]
    return build_job(DOC, block.start, block.end, GenerationSettings(steps=steps, seed=seed))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_job_survives_the_wire_unchanged() -> None:
    """Templates, kept words, polish and every setting: the server runs the job the client built."""
    block = parse_blocks(DOC)[1]
    at = DOC.index("some words")
    settings = GenerationSettings(steps=3, seed=5, strength=0.6, sampling="reference", entropy_bound=0.2)
    job = build_job(DOC, block.start, block.end, settings, "shorter", keeps=[(at, at + 10)])
    assert job.templates is not None
    assert job_from_json(json.loads(json.dumps(job_to_json(job)))) == job
    polish = build_job(DOC, block.start, block.end, settings, polish=0.3, free_form=True)
    assert job_from_json(json.loads(json.dumps(job_to_json(polish)))) == polish


def test_rewrite_through_the_server_equals_the_in_process_one(
    server: Served, md: Path, keyed: None, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["rewrite", str(md), "--block", "2", "--seed", "11", "--steps", "3", "--json"]
    assert main([*args, "--server", server.url]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert main([*args, "--device", "cpu"]) == 0
    local = json.loads(capsys.readouterr().out)
    assert remote["replacement"] == local["replacement"]
    assert remote["text"] == local["text"]
    assert (remote["seed"], remote["steps"], remote["model"]) == (
        local["seed"],
        local["steps"],
        local["model"],
    )

    # The token ids too, through the engines' own interface.
    from diffedit.engine.engine import Engine

    job = paragraph_job(steps=3, seed=11)
    here = Engine.load(device="cpu").rewrite(job)  # type: ignore[arg-type]
    there = RemoteEngine.connect(server.url, KEY).rewrite(job)  # type: ignore[arg-type]
    assert there.token_ids == here.token_ids
    assert there.text == here.text
    assert there.slots == here.slots


def test_the_stream_delivers_every_step_then_the_result(server: Served) -> None:
    frames: list[Frame] = []
    result = RemoteEngine.connect(server.url, KEY).rewrite(paragraph_job(steps=3), on_frame=frames.append)  # type: ignore[arg-type]
    assert [f.step for f in frames if not f.final] == [1, 2, 3]
    assert frames[-1].final and frames[-1].text == result.text
    assert all(len(f.token_ids) == len(f.accepted) == len(f.pieces) for f in frames)


def test_closing_the_stream_cancels_the_job_and_the_server_serves_the_next(server: Served) -> None:
    engine = RemoteEngine.connect(server.url, KEY)
    cancel = CancelToken()
    seen: list[int] = []

    def on_frame(frame: Frame) -> None:
        seen.append(frame.step)
        cancel.cancel()  # Stop after the first real canvas

    with pytest.raises(Cancelled):
        engine.rewrite(paragraph_job(steps=200), on_frame=on_frame, cancel=cancel)  # type: ignore[arg-type]
    assert seen == [1]
    result = engine.rewrite(paragraph_job(steps=2))  # type: ignore[arg-type]
    assert result.steps == 2
    assert "cancelled: the client closed the stream" in server.log_text()  # not run to its 200 steps


def test_a_wrong_or_missing_key_is_refused_with_a_clear_message(
    server: Served, md: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DIFFEDIT_API_KEY", "not-the-key")
    assert main(["rewrite", str(md), "--block", "2", "--server", server.url]) == 2
    assert "refused the API key (401): check $DIFFEDIT_API_KEY" in capsys.readouterr().err
    monkeypatch.setenv("OTHER_VAR", KEY)  # the key under another name works
    assert (
        main(
            [
                "rewrite",
                str(md),
                "--block",
                "2",
                "--steps",
                "1",
                "--server",
                server.url,
                "--api-key-env",
                "OTHER_VAR",
            ]
        )
        == 0
    )
    monkeypatch.delenv("DIFFEDIT_API_KEY")
    assert main(["rewrite", str(md), "--block", "2", "--server", server.url]) == 2
    assert "(401): set $DIFFEDIT_API_KEY" in capsys.readouterr().err
    assert md.read_text(encoding="utf-8") == DOC


def test_an_unreachable_server_is_said_so(md: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["rewrite", str(md), "--block", "2", "--in-place", "--server", url]) == 2
    err = capsys.readouterr().err
    assert f"cannot reach the server at {url}" in err and "is `diffedit serve` running there?" in err
    assert md.read_text(encoding="utf-8") == DOC


def test_a_server_without_the_diffusion_endpoint_is_said_so(
    md: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    class NotOurs(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), NotOurs)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        assert main(["rewrite", str(md), "--block", "2", "--server", url]) == 2
        assert "has no diffedit diffusion endpoint" in capsys.readouterr().err
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_server_killed_mid_run_leaves_the_file_untouched(tmp_path: Path, md: Path) -> None:
    served = start_server(tmp_path)
    try:
        cli = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "diffedit",
                "rewrite",
                str(md),
                "--block",
                "2",
                "--steps",
                "200",
                "--visual",
                "--in-place",
                "--server",
                served.url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ | {"DIFFEDIT_API_KEY": ""},
        )
        assert cli.stdout is not None
        first = cli.stdout.readline()  # the first real canvas arrived: the job runs on the server
        assert "step 1/200" in first, first
        served.process.kill()
        served.process.wait()
        _, err = cli.communicate(timeout=120)
        assert cli.returncode == 2
        assert "went away before the rewrite finished; nothing of it was kept" in err
        assert md.read_text(encoding="utf-8") == DOC
    finally:
        stop(served)


def test_model_options_with_server_and_a_url_without_scheme_are_refused(
    md: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rewrite", str(md), "--block", "2", "--model", "x", "--server", "http://127.0.0.1:1"]) == 2
    assert "options of `diffedit serve` there" in capsys.readouterr().err
    server = ["--server", "http://127.0.0.1:1"]
    assert main(["rewrite", str(md), "--block", "2", "--offload", "none", *server]) == 2
    assert "--offload are options of `diffedit serve` there" in capsys.readouterr().err
    with pytest.raises(EngineError, match="give a URL"):
        RemoteEngine.connect("127.0.0.1:8040")


def test_a_job_not_in_the_protocol_is_refused_with_its_reason(server: Served) -> None:
    request = urllib.request.Request(
        server.url + "/v1/completions",
        data=json.dumps({"prompt": {"prefix": ""}}).encode(),
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 400
    assert "missing or wrong field 'target'" in json.loads(caught.value.read())["error"]["message"]
