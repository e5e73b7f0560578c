"""How responsive is the editor while the model denoises on the worker thread?

Measures, with the real engine on a real checkpoint, in the real main window:

* event-loop gaps: a 1 ms QTimer records the time between its firings (a gap is how long the UI thread
  could not react to anything);
* keystroke-to-repaint: a synthetic key press is posted to the editor every 60 ms (typing at the end of
  the document, outside the target) and timed until the editor's viewport next paints.

Both are measured first with no regeneration running (baseline) and then while regenerations run back to
back, then while View > Confidence reads the whole document on the worker (issue 17: with no typing,
and with typing, which cancels the reading at every keystroke; ``--confidence-only`` runs just that).
Target: under 50 ms each. Also reported: the outline + word-count refresh after a typing pause (in
slices, and all at once), how long each commit takes, and how many blocks were re-highlighted (and how
many of them were first left for idle time: see ``diffedit/ui/highlighter.py``). Usage::

    QT_QPA_PLATFORM=offscreen python benchmarks/ui_responsiveness.py [--model DIR] [--size N] [--seconds S]

Without ``--model`` it uses the bundled demo model if present, else builds a tiny random checkpoint.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication

import diffedit.ui  # noqa: F401  (PySide6 6.12 guard)
from diffedit.settings import Settings
from diffedit.ui.main_window import RESOURCES, MainWindow
from diffedit.worker import EngineBridge

PARAGRAPH = (
    "Diffusion models write a whole passage at once and then refine it, step by step, "
    "until the text settles. *Emphasis*, `code` and [links](https://example.org) appear too."
)


def make_document(size: int) -> tuple[str, str]:
    unit = f"## Section\n\n{PARAGRAPH}\n\n- an item\n- another item\n\n```python\nprint('hi')\n```\n\n"
    body = unit * max(1, size // len(unit))
    target = "This is the paragraph that the benchmark rewrites again and again while you type."
    half = len(body) // 2
    cut = body.index("## Section", half)
    return body[:cut] + target + "\n\n" + body[cut:], target


class Probe(QObject):
    """Records event-loop gaps and keystroke-to-paint latencies."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__()
        self.window = window
        self.gaps: list[float] = []
        self.key_latency: list[float] = []
        self._last = time.perf_counter()
        self._pending: float | None = None
        self.tick = QTimer(interval=1)
        self.tick.setTimerType(Qt.TimerType.PreciseTimer)
        self.tick.timeout.connect(self._on_tick)
        self.keys = QTimer(interval=60)
        self.keys.timeout.connect(self._press)
        window.editor.viewport().installEventFilter(self)

    def start(self) -> None:
        self.gaps.clear()
        self.key_latency.clear()
        self._last = time.perf_counter()
        self.tick.start()
        self.keys.start()

    def stop(self) -> None:
        self.tick.stop()
        self.keys.stop()
        self._pending = None

    def _on_tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append((now - self._last) * 1000)
        self._last = now

    def _press(self) -> None:
        if self._pending is not None:
            return
        editor = self.window.editor
        c = editor.textCursor()
        if c.position() != editor.document().characterCount() - 1:
            c.movePosition(c.MoveOperation.End)
            editor.setTextCursor(c)
        self._pending = time.perf_counter()
        for kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
            QApplication.postEvent(editor, QKeyEvent(kind, Qt.Key.Key_X, Qt.KeyboardModifier.NoModifier, "x"))

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and self._pending is not None:
            self.key_latency.append((time.perf_counter() - self._pending) * 1000)
            self._pending = None
        return False


def summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:<34} (no samples)"
    v = sorted(values)
    p99 = v[min(len(v) - 1, int(len(v) * 0.99))]
    return (
        f"{name:<34} n={len(v):>6}  median={statistics.median(v):7.2f} ms  p99={p99:7.2f} ms  "
        f"max={v[-1]:7.2f} ms"
    )


def run_for(app: QApplication, seconds: float, keep_busy: MainWindow | None = None) -> int:
    """Spin the event loop; with ``keep_busy``, start a regeneration whenever none is running."""
    runs = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        if keep_busy is not None and not keep_busy.controller.running and keep_busy.bridge.state == "ready":
            keep_busy.controller.start(keep_busy.run_options(), span=keep_busy._bench_target)  # type: ignore[attr-defined]
            runs += 1
        app.processEvents()
        time.sleep(0.0005)
    return runs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="checkpoint folder (default: demo model, else a tiny one)")
    ap.add_argument("--size", type=int, default=1_000_000, help="document size in characters")
    ap.add_argument("--seconds", type=float, default=8.0, help="seconds per phase")
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--confidence-only", action="store_true", help="only the confidence view's phases")
    args = ap.parse_args()

    model = args.model
    if model is None:
        demo = RESOURCES / "models" / "diffedit-demo"
        if (demo / "config.json").is_file():
            model = demo
        else:
            from tests.checkpoints import build_checkpoint

            model = build_checkpoint(Path(tempfile.mkdtemp()) / "tiny-dg")
    os.environ.setdefault("DIFFEDIT_CONFIG_DIR", tempfile.mkdtemp())
    os.environ.setdefault("DIFFEDIT_STATE_DIR", tempfile.mkdtemp())

    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    settings = Settings(model_path=str(model), steps=args.steps, show_outline=True)
    window = MainWindow(settings, bridge=EngineBridge(), autoload_model=True)
    window.documents.confirm_discard = lambda: True  # type: ignore[method-assign]
    window.resize(1100, 750)
    window.show()
    text, target = make_document(args.size)
    t = time.perf_counter()
    window.editor.setPlainText(text)
    app.processEvents()
    load_ms = (time.perf_counter() - t) * 1000
    start = text.index(target)
    window._bench_target = (start, start + len(target))  # type: ignore[attr-defined]
    deadline = time.perf_counter() + 120
    while window.bridge.state not in ("ready", "failed") and time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.01)
    if window.bridge.state != "ready":
        print("model failed to load:", window.bridge.error)
        return 1
    frames = 0
    window.controller.progress.connect(lambda _p: None)
    original_show = window.controller.canvas.show

    def counting_show(*a: object) -> None:
        nonlocal frames
        frames += 1
        original_show(*a)  # type: ignore[arg-type]

    window.controller.canvas.show = counting_show  # type: ignore[method-assign,assignment]
    highlighter = window.editor.highlighter
    t = time.perf_counter()
    run_for(app, 1.0)  # settle: layout, and the highlighting the load left for idle time
    while highlighter.pending:
        run_for(app, 0.05)
    caught_up_ms = (time.perf_counter() - t) * 1000

    t = time.perf_counter()
    window.summary.refresh_now()
    refresh_ms = (time.perf_counter() - t) * 1000
    slices: list[float] = []
    original_slice = window.summary.run_slice

    def timed_slice() -> None:
        s = time.perf_counter()
        original_slice()
        slices.append((time.perf_counter() - s) * 1000)

    window.summary.run_slice = timed_slice  # type: ignore[method-assign]
    window.summary.slice_timer.timeout.disconnect()
    window.summary.slice_timer.timeout.connect(window.summary.run_slice)
    t = time.perf_counter()
    window.summary.start()
    while window.summary.job is not None:
        app.processEvents()
    sliced_ms = (time.perf_counter() - t) * 1000
    if args.confidence_only:
        confidence_phase(app, window, args.seconds)
        window.bridge.shutdown()
        window.close()
        return 0
    probe = Probe(window)
    print(
        f"model: {window.bridge.model_name} on {window.bridge.device}   document: {len(text):,} chars "
        f"(setPlainText + first events {load_ms:.0f} ms, highlighting done {caught_up_ms:.0f} ms later)   "
        f"steps: {args.steps}   CPUs: {os.cpu_count()}"
    )
    print(
        f"outline + word count after a typing pause: {sliced_ms:.0f} ms in {len(slices)} slices, "
        f"longest {max(slices):.1f} ms (all at once: {refresh_ms:.0f} ms)"
    )
    probe.start()
    run_for(app, args.seconds)
    probe.stop()
    print("idle (typing, no regeneration)")
    print("  " + summary("event-loop gap", probe.gaps))
    print("  " + summary("keystroke -> repaint", probe.key_latency))

    window.rewrite_bar.steps.setValue(args.steps)
    commits: list[float] = []
    original_finished = window.controller._on_finished

    def timed_finished(*a: object) -> None:
        s = time.perf_counter()
        original_finished(*a)  # type: ignore[arg-type]
        commits.append((time.perf_counter() - s) * 1000)

    window.bridge.jobFinished.disconnect(window.controller._on_finished)
    window.bridge.jobFinished.connect(timed_finished)
    highlighted, deferred = highlighter.blocks_highlighted, highlighter.blocks_deferred
    probe.start()
    t0 = time.perf_counter()
    runs = run_for(app, args.seconds, keep_busy=window)
    elapsed = time.perf_counter() - t0
    probe.stop()
    window.controller.stop(quiet=True)
    print(f"while regenerating ({runs} runs, {frames} canvas frames painted, {frames / elapsed:.1f} fps)")
    print("  " + summary("event-loop gap", probe.gaps))
    print("  " + summary("keystroke -> repaint", probe.key_latency))
    print("  " + summary("commit (result -> text replaced)", commits))
    print(
        f"  blocks highlighted: {highlighter.blocks_highlighted - highlighted:,} "
        f"({highlighter.blocks_deferred - deferred:,} left for idle time at first)"
    )
    confidence_phase(app, window, args.seconds)
    window.bridge.shutdown()
    window.close()
    return 0


def confidence_phase(app: QApplication, window: MainWindow, seconds: float) -> None:
    """View > Confidence over the whole document: the reading runs chunk by chunk on the worker; the UI
    converts each chunk's spans and repaints the visible shading."""
    view = window.confidence
    handled: list[float] = []
    painted: list[float] = []
    original_chunk = view._on_chunk
    window.bridge.chunkRead.disconnect(view._on_chunk)

    def timed_chunk(chunk: object) -> None:
        s = time.perf_counter()
        original_chunk(chunk)  # type: ignore[arg-type]
        handled.append((time.perf_counter() - s) * 1000)

    window.bridge.chunkRead.connect(timed_chunk)
    shade = view._shade
    original_paint = shade.paintEvent

    def timed_paint(event: object) -> None:
        s = time.perf_counter()
        original_paint(event)  # type: ignore[arg-type]
        painted.append((time.perf_counter() - s) * 1000)

    shade.paintEvent = timed_paint  # type: ignore[method-assign,assignment]
    window.editor.verticalScrollBar().setValue(0)
    probe = Probe(window)
    t = time.perf_counter()
    view.show_scope("document")
    started_ms = (time.perf_counter() - t) * 1000
    probe.tick.start()
    run_for(app, seconds)
    probe.tick.stop()
    tokens = len(view.data)
    print(
        f"confidence over the whole document (start: {started_ms:.0f} ms on the UI thread; "
        f"{len(handled)} chunks, {tokens:,} tokens read in {seconds:.0f} s: {tokens / seconds:,.0f} tokens/s)"
    )
    print("  " + summary("event-loop gap (no typing)", probe.gaps))
    print("  " + summary("chunk arrival (spans -> shading)", handled))
    print("  " + summary("shading paint (visible tokens)", painted))
    probe.start()
    run_for(app, seconds)
    probe.stop()
    print("  typing at the end while it is on (each keystroke cancels the reading; it resumes after a pause)")
    print("  " + summary("event-loop gap", probe.gaps))
    print("  " + summary("keystroke -> repaint", probe.key_latency))
    view.stop()


if __name__ == "__main__":
    raise SystemExit(main())
