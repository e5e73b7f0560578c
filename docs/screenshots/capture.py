"""Regenerate the user guide's screenshots: the real app, the demo model, a real X server.

xvfb-run -s "-screen 0 1280x860x24" env QT_QPA_PLATFORM=xcb python docs/screenshots/capture.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
os.environ.setdefault("DIFFEDIT_CONFIG_DIR", tempfile.mkdtemp())
os.environ.setdefault("DIFFEDIT_STATE_DIR", tempfile.mkdtemp())

from PySide6.QtWidgets import QApplication  # noqa: E402

import diffedit.ui  # noqa: E402,F401
from diffedit.resources import templates  # noqa: E402
from diffedit.settings import Settings  # noqa: E402
from diffedit.ui.editing.theme import THEMES, apply_theme  # noqa: E402
from diffedit.ui.main_window import RESOURCES, MainWindow  # noqa: E402


def pump(app: QApplication, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.005)


def select(w: MainWindow, start: int, end: int) -> None:
    c = w.editor.textCursor()
    c.setPosition(start)
    c.setPosition(end, c.MoveMode.KeepAnchor)
    w.editor.setTextCursor(c)


def rewrite_and_grab(app: QApplication, w: MainWindow, strength: float, step: int, shot: str) -> None:
    """Rewrite the selection, save ``shot`` when the canvas reaches ``step``, then wait for the commit."""
    w.rewrite_bar.set_values(32, strength)
    w.rewrite()
    while w.controller.running:
        pump(app, 0.02)
        paint = w.controller.latest_paint
        if paint is not None and paint.step >= step and paint.text:
            w.grab().save(str(HERE / shot))
            break
    while w.controller.running:
        pump(app, 0.05)
    pump(app, 0.3)


def draft_and_grab(app: QApplication, w: MainWindow, shot: str) -> None:
    """Draft the README template's empty sections; save ``shot`` while the second block denoises, then stop
    (the first block stays, as Stop keeps what is committed)."""
    path = dict(templates())["README"]
    w.new_from_template(path)
    dialog = w.draft_sections()
    dialog.length.setCurrentIndex(0)  # short blocks: the shot shows several sections at once
    dialog.accept()
    while w.drafts.running:
        pump(app, 0.02)
        paint = w.controller.latest_paint
        if len(w.controller.history) >= 1 and paint is not None and paint.step >= 4 and paint.text:
            w.grab().save(str(HERE / shot))
            break
    w.stop_run()
    pump(app, 0.3)


def alternatives_and_grab(app: QApplication, w: MainWindow, start: int, shot: str) -> None:
    """Three candidates of the paragraph at ``start`` side by side, mid-animation; then Cancel (the text
    stays)."""
    select(w, start + 5, start + 5)
    dialog = w.alternatives(3)
    assert dialog is not None
    while dialog.isVisible() and min(c.step for c in dialog.columns) < 4:
        pump(app, 0.02)
    dialog.grab().save(str(HERE / shot))
    dialog.reject()
    pump(app, 0.3)


def keep_and_confidence(app: QApplication, w: MainWindow, start: int) -> None:
    """Kept words mid-animation (issue 17), undone afterwards (the paragraph at ``start`` as it was, its marks
    cleared), then the confidence view over the welcome text."""
    text = w.editor.toPlainText()
    for phrase in ("good first target", "whole Markdown blocks"):
        at = text.index(phrase, start)
        select(w, at, at + len(phrase))
        w.act_keep_words.trigger()
    select(w, start + 5, start + 5)
    pump(app, 0.3)
    w.grab().save(str(HERE / "keep-words-marked.png"))
    rewrite_and_grab(app, w, 1.0, 4, "keep-words-animation.png")
    w.review_bar.undo_button.click()
    w.controller.keeps.clear()
    pump(app, 0.3)
    w.editor.verticalScrollBar().setValue(0)
    w.confidence.show_scope("document")
    while w.confidence.reading and len(w.confidence.data) < 400:
        pump(app, 0.05)
    pump(app, 0.3)
    w.grab().save(str(HERE / "confidence-view.png"))
    w.confidence.stop()


def preferences_and_grab(app: QApplication, w: MainWindow, shot: str) -> None:
    """Edit ▸ Preferences with rewrites on a server (shown, then cancelled: nothing is saved)."""
    dialog = w.preferences_dialog()
    dialog.run_on.setCurrentIndex(dialog.run_on.findData("diffedit"))
    dialog.server_url.setText("http://gpu-box:8040")
    dialog.show()
    pump(app, 0.5)
    dialog.grab().save(str(HERE / shot))
    dialog.reject()


def main() -> int:
    app = QApplication([])
    apply_theme(app, THEMES["light"])
    model = RESOURCES / "models" / "diffedit-demo"
    settings = Settings(
        model_path=str(model), steps=32, show_outline=True, show_history=True, show_preview=True
    )
    w = MainWindow(settings, autoload_model=True)
    w.documents.confirm_discard = lambda: True  # type: ignore[method-assign]
    w.resize(1280, 820)
    w.show()
    while w.bridge.state not in ("ready", "failed"):
        pump(app, 0.05)
    if w.bridge.state != "ready":
        print("model:", w.bridge.error)
        return 1
    text = w.editor.toPlainText()
    start = text.index("This paragraph is a good first target")
    select(w, start + 5, start + 60)
    pump(app, 0.5)
    w.grab().save(str(HERE / "target-selected.png"))
    alternatives_and_grab(app, w, start, "alternatives.png")
    keep_and_confidence(app, w, start)
    select(w, start + 5, start + 60)
    rewrite_and_grab(app, w, 0.6, 5, "rewrite-animation.png")
    w.grab().save(str(HERE / "rewrite-committed.png"))
    w.review_bar.keep_button.click()
    # Several blocks at once (the list under "While the model works"): each item keeps its marker and kind.
    text = w.editor.toPlainText()
    first = text.index("- positions that are still noise")
    select(w, first + 3, text.index("- the status bar shows the step") + 10)
    rewrite_and_grab(app, w, 1.0, 4, "rewrite-multiblock.png")
    w.review_bar.keep_button.click()
    w.act_dark.setChecked(True)
    w.act_preview.setChecked(True)
    pump(app, 0.5)
    w.grab().save(str(HERE / "dark-preview-history.png"))
    w.resize(800, 600)  # the smallest supported window, every panel open: the bar stays usable
    pump(app, 0.5)
    w.grab().save(str(HERE / "dark-800x600.png"))
    w.act_dark.setChecked(False)
    w.act_preview.setChecked(False)
    w.resize(1280, 820)
    draft_and_grab(app, w, "draft-in-progress.png")
    preferences_and_grab(app, w, "preferences-server.png")
    w.bridge.shutdown()
    w.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
