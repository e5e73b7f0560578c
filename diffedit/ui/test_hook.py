"""A scripted driver for end-to-end tests of the real app; inert unless ``DIFFEDIT_TEST_SCRIPT`` is set.

The script is a JSON list of steps run in order on the first window, each a dict with "do":
  {"do": "type", "text": "..."}     insert text at the end of the document, as typing would
  {"do": "wait_autosave"}           until the current text is in this instance's recovery file
  {"do": "wait_recovery_dialog"}    until the startup recovery dialog is showing
  {"do": "restore_all"}             press "Restore All" in that dialog
  {"do": "report", "tag": "..."}    append the state of every window to ``DIFFEDIT_TEST_OUTPUT`` (JSON lines)
  {"do": "wait", "ms": 500}
Each wait gives up after 60 s with a report tagged "timeout".
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QApplication

SCRIPT_ENV = "DIFFEDIT_TEST_SCRIPT"
OUTPUT_ENV = "DIFFEDIT_TEST_OUTPUT"
WAIT_LIMIT_S = 60.0


def maybe_run_test_script(window: Any, keeper: Any) -> None:
    script = os.environ.get(SCRIPT_ENV)
    if not script:
        return
    steps = json.loads(Path(script).read_text(encoding="utf-8"))
    runner = _ScriptRunner(window, keeper, steps, Path(os.environ.get(OUTPUT_ENV, script + ".out")))
    window._test_script_runner = runner  # keep it alive with the window
    QTimer.singleShot(0, runner.tick)


class _ScriptRunner(QObject):
    def __init__(self, window: Any, keeper: Any, steps: list[dict[str, Any]], output: Path) -> None:
        super().__init__(window)
        self.window = window
        self.keeper = keeper
        self.steps = list(steps)
        self.output = output
        self.offered: list[dict[str, Any]] | None = None
        self._waiting_since: float | None = None

    def tick(self) -> None:
        while self.steps:
            step = self.steps[0]
            done = getattr(self, "_" + step["do"])(step)
            if not done:
                if self._waiting_since is None:
                    self._waiting_since = time.monotonic()
                if time.monotonic() - self._waiting_since > WAIT_LIMIT_S:
                    self._report({"tag": "timeout", "step": step})
                    self.steps.clear()
                    return
                QTimer.singleShot(50, self.tick)
                return
            self._waiting_since = None
            self.steps.pop(0)

    # -- steps: each returns True when done -------------------------------------------------------------

    def _type(self, step: dict[str, Any]) -> bool:
        editor = self.window.editor
        editor.moveCursor(QTextCursor.MoveOperation.End)
        editor.insertPlainText(step["text"])
        return True

    def _wait(self, step: dict[str, Any]) -> bool:
        if self._waiting_since is None:
            self._waiting_since = time.monotonic()
        return (time.monotonic() - self._waiting_since) * 1000 >= step.get("ms", 500)

    def _wait_autosave(self, _step: dict[str, Any]) -> bool:
        doc_id = self.keeper.snapshots.doc_id
        text = self.window.editor.toPlainText()
        if self.keeper.autosaver.pending:
            return False
        return any(e.doc_id == doc_id and e.text == text for e in self.keeper.store.live_entries())

    def _wait_recovery_dialog(self, _step: dict[str, Any]) -> bool:
        dialog = self.keeper.recovery_dialog
        if dialog is None or not dialog.isVisible():
            return False
        self.offered = [_entry_json(e) for e in dialog.entries()]
        return True

    def _restore_all(self, _step: dict[str, Any]) -> bool:
        # Clicked from a fresh timer: the click runs more dialogs' code, keep it out of this loop.
        QTimer.singleShot(0, self.keeper.recovery_dialog.restore_all_button.click)
        return True

    def _report(self, step: dict[str, Any]) -> bool:
        windows = [w for w in QApplication.topLevelWidgets() if hasattr(w, "keeper") and w.isVisible()]
        record = {
            "tag": step.get("tag", ""),
            "pid": os.getpid(),
            "offered": self.offered,
            "recovery_dialog_shown": self.keeper.recovery_dialog is not None,
            "windows": [_window_json(w) for w in windows],
            **({"step": step["step"]} if "step" in step else {}),
        }
        with open(self.output, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return True


def _entry_json(entry: Any) -> dict[str, Any]:
    return {
        "doc_id": entry.doc_id,
        "path": entry.path,
        "display_name": entry.display_name,
        "text": entry.text,
    }


def _window_json(window: Any) -> dict[str, Any]:
    return {
        "path": str(window.path) if window.path is not None else None,
        "text": window.editor.toPlainText(),
        "modified": window.editor.document().isModified(),
        "read_only": window.editor.isReadOnly(),
        "doc_id": window.keeper.snapshots.doc_id,
        "title": window.windowTitle(),
    }
