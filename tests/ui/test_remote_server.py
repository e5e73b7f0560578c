"""The app rewriting through a real ``diffedit serve`` (a subprocess on 127.0.0.1, the bundled demo model).

Chosen in the settings as Edit ▸ Preferences ▸ Rewrite on "A server" stores it; the bridge then connects a
``RemoteEngine`` on its worker thread and every rewrite, alternative and reading runs there, behind the same
job -> frames -> result path as the in-process engine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from diffedit.document.session import normalize_replacement
from diffedit.engine.types import RewriteResult
from diffedit.settings import Settings
from diffedit.ui.main_window import MainWindow
from diffedit.ui.rewrite.controller import RunOptions
from diffedit.worker import default_loader
from tests.test_serve import KEY, Served, free_port, start_server, stop
from tests.ui.conftest import DOC, TARGET, WindowFactory, select_text

KEY_ENV = "DIFFEDIT_TEST_APP_KEY"
T0 = DOC.index(TARGET)
T1 = T0 + len(TARGET)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One keyed server for the module (its key in KEY_ENV of its own environment)."""
    served = start_server(tmp_path_factory.mktemp("serve"), "--api-key-env", KEY_ENV, env={KEY_ENV: KEY})
    yield served
    stop(served)


def served_settings(url: str) -> Settings:
    return Settings(use_server=True, server_url=url, server_key_env=KEY_ENV)


def remote_window(
    make_window: WindowFactory, qtbot: QtBot, url: str, monkeypatch: pytest.MonkeyPatch, ready: bool = True
) -> MainWindow:
    monkeypatch.setenv(KEY_ENV, KEY)
    w = make_window(default_loader, settings=served_settings(url))
    qtbot.waitUntil(lambda: w.bridge.state in ("ready", "failed"), timeout=60_000)
    if ready:
        assert w.bridge.state == "ready", w.bridge.error
    return w


def run_target(w: MainWindow, qtbot: QtBot, seed: int | None, steps: int) -> list[RewriteResult]:
    results: list[RewriteResult] = []
    w.bridge.jobFinished.connect(lambda _id, r: results.append(r))
    assert w.controller.start(RunOptions(seed=seed, steps=steps), (T0, T1))
    return results


def test_a_rewrite_through_the_server_equals_the_in_process_one_and_is_one_undo_step(
    make_window: WindowFactory,
    engine_checkpoint: Path,
    server: Served,
    qtbot: QtBot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = remote_window(make_window, qtbot, server.url, monkeypatch)
    host = server.url.removeprefix("http://")
    assert w.status.model.text() == f"Model: diffedit-demo on server {host} (cpu) (no instructions)"
    assert w.bridge.demo_model and not w.status.demo.isHidden()  # the server says it serves the demo

    remote = run_target(w, qtbot, seed=11, steps=3)
    qtbot.waitUntil(lambda: not w.controller.running, timeout=120_000)
    assert remote, w.notice_bar.label.text()
    assert w.controller.history[0].frames, "the server's real intermediate canvases were shown and kept"

    local_window = make_window(default_loader, model_path=str(engine_checkpoint))
    qtbot.waitUntil(lambda: local_window.bridge.state in ("ready", "failed"), timeout=60_000)
    local = run_target(local_window, qtbot, seed=11, steps=3)
    qtbot.waitUntil(lambda: not local_window.controller.running, timeout=120_000)
    assert local, local_window.notice_bar.label.text()

    assert remote[0].token_ids == local[0].token_ids and remote[0].text == local[0].text
    assert w.editor.toPlainText() == local_window.editor.toPlainText() != DOC
    assert w.editor.toPlainText() == DOC[:T0] + normalize_replacement(remote[0].text) + DOC[T1:]
    assert w.documents.snapshots.before_rewrite == DOC  # kept for recovery, as for a local rewrite
    w.editor.undo()
    assert w.editor.toPlainText() == DOC and not w.editor.document().isUndoAvailable()


def test_stop_mid_run_leaves_the_document_byte_identical_and_the_server_serves_on(
    make_window: WindowFactory, server: Served, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = remote_window(make_window, qtbot, server.url, monkeypatch)
    before = server.log_text().count("cancelled: the client closed the stream")
    select_text(w, TARGET)
    w.rewrite_bar.steps.setValue(500)
    assert w.rewrite()
    qtbot.waitUntil(
        lambda: w.controller.latest_paint is not None and w.controller.latest_paint.step >= 1, timeout=60_000
    )
    qtbot.keyClick(w.editor, Qt.Key.Key_Escape)
    assert not w.controller.running
    assert w.editor.toPlainText() == DOC and not w.editor.document().isModified()
    # The stream was closed: the server cancelled the job (it would have run 500 steps) ...
    qtbot.waitUntil(
        lambda: server.log_text().count("cancelled: the client closed the stream") > before, timeout=30_000
    )
    assert w.editor.toPlainText() == DOC and not w.editor.document().isUndoAvailable()
    # ... and serves the next one.
    results = run_target(w, qtbot, seed=3, steps=2)
    qtbot.waitUntil(lambda: not w.controller.running, timeout=120_000)
    assert results and results[0].steps == 2, w.notice_bar.label.text()


def test_alternatives_and_the_confidence_view_run_on_the_server(
    make_window: WindowFactory, server: Served, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffedit.engine.engine import Engine

    w = remote_window(make_window, qtbot, server.url, monkeypatch)
    select_text(w, TARGET)
    w.rewrite_bar.steps.setValue(3)
    dialog = w.alternatives(2)
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.result_ is not None, timeout=120_000)
    assert dialog.result_ is not None
    here = Engine.load(device="cpu").alternatives(dialog.job, 2)
    assert [c.token_ids for c in dialog.result_.candidates] == [c.token_ids for c in here.candidates]
    qtbot.mouseClick(dialog.columns[1].pick, Qt.MouseButton.LeftButton)
    assert w.editor.toPlainText() != DOC and w.controller.history.entries
    w.editor.undo()
    assert w.editor.toPlainText() == DOC

    ended: list[str] = []
    w.bridge.inspectEnded.connect(lambda _id, why: ended.append(why))
    chunks: list[object] = []
    w.bridge.chunkRead.connect(chunks.append)
    w.bridge.inspect(DOC, [(T0, T1)])
    qtbot.waitUntil(lambda: bool(ended), timeout=60_000)
    assert ended == [""] and len(chunks) == 1


def test_the_server_killed_mid_run_leaves_the_document_untouched_and_says_so(
    make_window: WindowFactory, tmp_path: Path, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = start_server(tmp_path)
    try:
        w = remote_window(make_window, qtbot, served.url, monkeypatch)
        select_text(w, TARGET)
        w.rewrite_bar.steps.setValue(500)
        assert w.rewrite()
        qtbot.waitUntil(
            lambda: w.controller.latest_paint is not None and w.controller.latest_paint.step >= 1,
            timeout=60_000,
        )
        served.process.kill()  # while frames are arriving
        served.process.wait()
        qtbot.waitUntil(lambda: not w.controller.running, timeout=60_000)
        message = w.notice_bar.label.text()
        assert f"the server at {served.url} went away before the rewrite finished" in message
        assert "The text is unchanged." in message
        assert w.editor.toPlainText() == DOC and not w.editor.document().isModified()
        assert not w.editor.document().isUndoAvailable()
    finally:
        stop(served)


def test_an_unreachable_server_a_wrong_key_and_a_plain_server_are_said_so(
    make_window: WindowFactory, server: Served, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    w = remote_window(make_window, qtbot, url, monkeypatch, ready=False)
    assert w.bridge.state == "failed" and w.status.model.text() == "Server: not connected"
    assert f"The server could not be used: cannot reach the server at {url}" in w.notice_bar.label.text()

    monkeypatch.setenv(KEY_ENV, "not-the-key")
    w = make_window(default_loader, settings=served_settings(server.url))
    qtbot.waitUntil(lambda: w.bridge.state == "failed", timeout=60_000)
    message = w.notice_bar.label.text()
    assert "refused the API key (401)" in message
    assert f"check ${KEY_ENV} in the environment diffedit was started from" in message

    class PlainOpenAI(BaseHTTPRequestHandler):  # a completions server without diffedit's protocol
        def do_GET(self) -> None:
            body = b'{"object": "list", "data": [{"id": "some-llm", "object": "model"}]}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), PlainOpenAI)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        w = make_window(
            default_loader, settings=served_settings(f"http://127.0.0.1:{httpd.server_address[1]}")
        )
        qtbot.waitUntil(lambda: w.bridge.state == "failed", timeout=60_000)
        message = w.notice_bar.label.text()
        assert "not with diffedit's diffusion protocol" in message
        assert "point the server in Edit ▸ Preferences at a `diffedit serve`" in message
    finally:
        httpd.shutdown()
        httpd.server_close()


class MemoryKeyring:
    """A keyring backend double (the machine running the tests has no Secret Service)."""

    priority = 1

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], str] = {}

    def set_password(self, service: str, user: str, password: str) -> None:
        self.entries[(service, user)] = password

    def get_password(self, service: str, user: str) -> str | None:
        return self.entries.get((service, user))

    def delete_password(self, service: str, user: str) -> None:
        self.entries.pop((service, user), None)


@pytest.fixture
def memory_keyring(monkeypatch: pytest.MonkeyPatch) -> MemoryKeyring:
    import keyring

    ring = MemoryKeyring()
    for name in ("set_password", "get_password", "delete_password"):
        monkeypatch.setattr(keyring, name, getattr(ring, name))
    return ring


def test_preferences_choose_the_server_and_keep_its_key_in_the_keyring_never_in_the_settings(
    make_window: WindowFactory,
    server: Served,
    qtbot: QtBot,
    monkeypatch: pytest.MonkeyPatch,
    memory_keyring: MemoryKeyring,
) -> None:
    from diffedit.settings import FILE_NAME, config_dir

    monkeypatch.delenv(KEY_ENV, raising=False)
    w = make_window(default_loader, settings=served_settings(server.url))  # no key in the environment
    qtbot.waitUntil(lambda: w.bridge.state == "failed", timeout=60_000)
    assert f"set ${KEY_ENV} before starting diffedit" in w.notice_bar.label.text()

    dialog = w.preferences_dialog()
    assert dialog.run_on.currentData() == "diffedit" and dialog.server_url.text() == server.url
    dialog.key_source.setCurrentIndex(dialog.key_source.findData(True))
    dialog.key_entry.setText(KEY)
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted, dialog.error.text()
    assert memory_keyring.entries == {("diffedit", server.url): KEY}
    qtbot.waitUntil(lambda: w.bridge.state == "ready", timeout=60_000)  # connected again, with the key
    assert "server 127.0.0.1" in w.status.model.text()

    saved = (config_dir() / FILE_NAME).read_text(encoding="utf-8")
    assert KEY not in saved and '"server_key_in_keyring": true' in saved
    w.close()  # closing saves the settings once more
    assert KEY not in (config_dir() / FILE_NAME).read_text(encoding="utf-8")
    assert KEY not in repr(Settings.load().to_dict())


def test_preferences_refuse_a_server_without_a_url_or_a_keyring_that_fails(
    make_window: WindowFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyring
    from keyring.errors import NoKeyringError

    w = make_window()
    dialog = w.preferences_dialog()
    dialog.run_on.setCurrentIndex(dialog.run_on.findData("diffedit"))
    dialog.server_url.setText("gpu-box:8040")
    dialog.accept()
    assert dialog.result() != dialog.DialogCode.Accepted
    assert "give the server's URL, such as http://gpu-box:8040" in dialog.error.text()

    def no_keyring(*_args: object) -> None:
        raise NoKeyringError("No recommended backend was available")

    monkeypatch.setattr(keyring, "set_password", no_keyring)
    dialog.server_url.setText("http://gpu-box:8040")
    dialog.key_source.setCurrentIndex(dialog.key_source.findData(True))
    dialog.key_entry.setText("the-key")
    dialog.accept()
    assert dialog.result() != dialog.DialogCode.Accepted
    assert "the system keyring could not store the key" in dialog.error.text()
    assert "use an environment variable instead" in dialog.error.text()
    assert not w.settings.use_server  # nothing taken


def test_a_server_whose_model_changed_is_connected_again_and_the_text_is_untouched(
    make_window: WindowFactory, server: Served, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server answers 409 to a job naming another tokenizer than its own (as after a restart with
    another model): the run fails with the reason, the editor connects again, and the next run works."""
    from diffedit.engine.remote import RemoteEngine, ServerFacts

    w = remote_window(make_window, qtbot, server.url, monkeypatch)
    engine = w.bridge._worker.engine
    assert isinstance(engine, RemoteEngine)
    engine.facts = ServerFacts(engine.facts.device, engine.facts.endpoints, "0" * 64)  # what it saw "before"
    loads: list[str] = []
    w.bridge.modelLoaded.connect(lambda name, _device: loads.append(name))
    failed = run_target(w, qtbot, seed=5, steps=2)
    qtbot.waitUntil(lambda: not w.controller.running, timeout=60_000)
    assert not failed and w.editor.toPlainText() == DOC
    message = w.notice_bar.label.text()
    assert "(409)" not in message and "another tokenizer" in message and "connected to it again" in message
    qtbot.waitUntil(lambda: bool(loads), timeout=30_000)  # the status bar and badge are the new model's
    again = run_target(w, qtbot, seed=5, steps=2)
    qtbot.waitUntil(lambda: not w.controller.running, timeout=120_000)
    assert again and again[0].steps == 2, w.notice_bar.label.text()


def test_a_vllm_server_chosen_in_preferences_rewrites_in_place_in_one_undo_step(
    make_window: WindowFactory, server: Served, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vLLM protocol from the app (against diffedit serve, which speaks it): the bundled demo's
    tokenizer turns the text into ids; the result is committed as one undo step, kept for recovery."""
    from diffedit.engine.vllm_client import VllmEngine
    from diffedit.settings import FILE_NAME, config_dir

    monkeypatch.setenv(KEY_ENV, KEY)
    w = make_window(default_loader)
    qtbot.waitUntil(lambda: w.bridge.state == "ready", timeout=60_000)  # the local demo first
    dialog = w.preferences_dialog()
    dialog.run_on.setCurrentIndex(dialog.run_on.findData("vllm"))
    dialog.server_url.setText(server.url)
    dialog.key_env.setText(KEY_ENV)
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted, dialog.error.text()
    assert '"server_protocol": "vllm"' in (config_dir() / FILE_NAME).read_text(encoding="utf-8")
    qtbot.waitUntil(lambda: "server" in w.status.model.text() or w.bridge.state == "failed", timeout=60_000)
    assert w.bridge.state == "ready", w.bridge.error
    assert isinstance(w.bridge._worker.engine, VllmEngine)

    results = run_target(w, qtbot, seed=5, steps=3)
    qtbot.waitUntil(lambda: not w.controller.running, timeout=120_000)
    assert results, w.notice_bar.label.text()
    assert '"POST /v1/completions HTTP/1.1" 200' in server.log_text()
    text = normalize_replacement(results[0].text)
    assert "\n\n" not in text.strip("\n")  # a paragraph stays one paragraph
    assert w.editor.toPlainText() == DOC[:T0] + text + DOC[T1:] != DOC
    w.editor.undo()
    assert w.editor.toPlainText() == DOC and not w.editor.document().isUndoAvailable()
