"""The engine bridge: one job at a time on a worker thread, ids, cancel, stale results, failures."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from diffedit.engine.types import EditRequest, EngineError, GenerationSettings
from diffedit.worker import EngineBridge, describe_failure
from tests.ui.fake_engine import FakeEngine, fake_loader

REQUEST = EditRequest("before ", "the target words", " after")


@pytest.fixture
def bridge_for(qtbot: QtBot):  # type: ignore[no-untyped-def]
    made: list[EngineBridge] = []

    def make(engine: FakeEngine | None = None, fail: str = "") -> EngineBridge:
        b = EngineBridge(fake_loader(engine, fail))
        made.append(b)
        return b

    yield make
    for b in made:
        b.shutdown()


def test_load_then_run_reports_the_result(bridge_for, qtbot: QtBot) -> None:  # type: ignore[no-untyped-def]
    bridge = bridge_for(FakeEngine())
    with qtbot.waitSignal(bridge.modelLoaded, timeout=5000) as loaded:
        bridge.load()
    assert loaded.args == ["fake-dg", "cpu"]
    with qtbot.waitSignal(bridge.jobFinished, timeout=5000) as done:
        job_id = bridge.submit(REQUEST, GenerationSettings(steps=3, seed=5))
    assert done.args[0] == job_id
    assert done.args[1].text.startswith("eht")
    assert bridge.current_job is None


def test_frames_are_coalesced_into_one_slot(bridge_for, qtbot: QtBot) -> None:  # type: ignore[no-untyped-def]
    engine = FakeEngine(step_delay_s=0.0)
    bridge = bridge_for(engine)
    with qtbot.waitSignal(bridge.jobFinished, timeout=5000):
        job_id = bridge.submit(REQUEST, GenerationSettings(steps=20))
    frame = bridge.take_frame(job_id)
    assert frame is not None and frame.final and frame.step == 20
    assert bridge.take_frame(job_id) is None


def test_cancel_mid_run(bridge_for, qtbot: QtBot) -> None:  # type: ignore[no-untyped-def]
    engine = FakeEngine(held=True)
    bridge = bridge_for(engine)
    job_id = bridge.submit(REQUEST, GenerationSettings(steps=50))
    qtbot.waitUntil(lambda: bool(engine.jobs), timeout=5000)
    with qtbot.waitSignal(bridge.jobCancelled, timeout=5000) as cancelled:
        bridge.cancel()
    assert cancelled.args == [job_id]


def test_a_new_job_supersedes_the_running_one(bridge_for, qtbot: QtBot) -> None:  # type: ignore[no-untyped-def]
    engine = FakeEngine(held=True)
    bridge = bridge_for(engine)
    finished: list[int] = []
    bridge.jobFinished.connect(lambda job_id, _r: finished.append(job_id))
    first = bridge.submit(REQUEST, GenerationSettings(steps=5))
    second = bridge.submit(REQUEST, GenerationSettings(steps=2))
    engine.release()
    qtbot.waitUntil(lambda: finished == [second], timeout=5000)
    assert first != second and first not in finished


def test_engine_failure_is_a_message(bridge_for, qtbot: QtBot) -> None:  # type: ignore[no-untyped-def]
    bridge = bridge_for(FakeEngine(fail_with=EngineError("out of memory on cpu: shorten the selection")))
    with qtbot.waitSignal(bridge.jobFailed, timeout=5000) as failed:
        bridge.submit(REQUEST, GenerationSettings(steps=4))
    assert "out of memory" in failed.args[1]


def test_load_failure_fails_jobs_clearly_and_can_retry(bridge_for, qtbot: QtBot) -> None:  # type: ignore[no-untyped-def]
    bridge = bridge_for(fail="no model at /nowhere")
    with qtbot.waitSignal(bridge.modelFailed, timeout=5000) as failed:
        bridge.load()
    assert "no model" in failed.args[0] and bridge.state == "failed"
    with qtbot.waitSignal(bridge.jobFailed, timeout=5000) as job_failed:
        bridge.submit(REQUEST, GenerationSettings(steps=2))
    assert "not loaded" in job_failed.args[1] and "no model" in job_failed.args[1]


def test_describe_failure() -> None:
    assert describe_failure(MemoryError()).startswith("Out of memory")
    assert "ValueError: bad weights" in describe_failure(ValueError("bad weights\ntrace"))


def test_the_models_settings_reach_the_loader(qtbot: QtBot) -> None:
    from diffedit.worker import ModelSpec

    seen: dict[str, object] = {}

    def loader(path=None, device=None, dtype=None, progress=None, **extra):  # type: ignore[no-untyped-def]
        seen.update(path=path, device=device, dtype=dtype, **extra)
        return FakeEngine()

    bridge = EngineBridge(loader)
    try:
        with qtbot.waitSignal(bridge.modelLoaded, timeout=5000):
            bridge.load(
                ModelSpec("/m", "cuda", "bf16", fp8=True, compile_step=True, quantize="int4", offload="none")
            )
    finally:
        bridge.shutdown()
    assert seen == {
        "path": "/m",
        "device": "cuda",
        "dtype": "bf16",
        "fp8": True,
        "compile_step": True,
        "quantize": "int4",
        "offload": "none",
    }


def test_a_compiled_step_that_fell_back_is_named_with_the_model(bridge_for, qtbot: QtBot) -> None:  # type: ignore[no-untyped-def]
    engine = FakeEngine()
    engine.compile_error = "RuntimeError: Triton is not installed"  # type: ignore[attr-defined]
    bridge = bridge_for(engine)
    with qtbot.waitSignal(bridge.modelLoaded, timeout=5000) as loaded:
        bridge.load()
    assert loaded.args == ["fake-dg", "cpu (compiled step off: RuntimeError: Triton is not installed)"]


def test_a_superseded_jobs_result_is_dropped_by_the_bridge(bridge_for, qtbot: QtBot) -> None:  # type: ignore[no-untyped-def]
    """The worker reported job 1's result, but the UI submitted job 2 before the report arrived."""
    import threading

    from PySide6.QtCore import Qt

    engine = FakeEngine(step_delay_s=0.0)
    bridge = bridge_for(engine)
    with qtbot.waitSignal(bridge.modelLoaded, timeout=5000):
        bridge.load()
    reported = threading.Event()
    bridge._worker.finished.connect(lambda *_a: reported.set(), Qt.ConnectionType.DirectConnection)
    finished: list[int] = []
    bridge.jobFinished.connect(lambda job_id, _r: finished.append(job_id))
    first = bridge.submit(REQUEST, GenerationSettings(steps=2))
    assert reported.wait(5)  # job 1's result is queued for the UI thread, not yet delivered
    second = bridge.submit(REQUEST, GenerationSettings(steps=2))
    qtbot.waitUntil(lambda: second in finished, timeout=5000)
    assert first not in finished


def test_the_mailbox_hands_out_only_the_asked_jobs_frame() -> None:
    from diffedit.engine.types import Frame
    from diffedit.worker import _Mailbox

    def frame(job_id: int) -> Frame:
        return Frame(job_id, 0, 1, 4, (1,), ("x",), ((0, 1),), (True,), (True,), (0.0,), "x")

    mailbox = _Mailbox()
    mailbox.put(frame(1))  # a late frame of a superseded job
    assert mailbox.take(2) is None
    mailbox.put(frame(2))
    taken = mailbox.take(2)
    assert taken is not None and taken.job_id == 2


def test_the_real_loader_runs_the_native_model_unless_the_step_is_compiled(
    tiny_checkpoint, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from diffedit.engine.engine import Engine
    from diffedit.worker import default_loader

    engine = default_loader(tiny_checkpoint, device="cpu")
    assert engine.loaded.implementation == "native"  # type: ignore[attr-defined]
    asked: dict[str, object] = {}
    monkeypatch.setattr(Engine, "load", classmethod(lambda cls, path, **options: asked.update(options)))
    default_loader(tiny_checkpoint, device="cpu", compile_step=True)
    assert asked["impl"] == "transformers"
