"""The real app, driven by a script: ``python -m tests.ui.files.scripted_app SCRIPT OUTPUT [app args]``.

Starts diffedit exactly as ``python -m diffedit`` does (``diffedit.app.open_window``: the first window, the
recovery offer), then runs the JSON list of steps in SCRIPT on the first window, each a dict with "do":
  {"do": "type", "text": "..."}     insert text at the end of the document, as typing would
  {"do": "wait_autosave"}           until the current text is in this instance's recovery file
  {"do": "wait_recovery_dialog"}    until the startup recovery dialog is showing
  {"do": "restore_all"}             press "Restore All" in that dialog
  {"do": "report", "tag": "..."}    append the state of every window to OUTPUT (JSON lines)
  {"do": "wait", "ms": 500}
Each wait gives up after 60 s with a report tagged "timeout". The test then kills the process.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QApplication

from diffedit.app import open_window
from diffedit.document.recovery import RecoveryEntry
from diffedit.ui.files.recovery_dialog import RecoveryDialog
from diffedit.ui.main_window import MainWindow

WAIT_LIMIT_S = 60.0


class ScriptRunner(QObject):
    def __init__(self, window: MainWindow, steps: list[dict[str, Any]], output: Path) -> None:
        super().__init__(window)
        self.window = window
        self.steps = list(steps)
        self.output = output
        self.offered: list[dict[str, Any]] | None = None
        self.dialog_seen = False
        self._waiting_since: float | None = None

    def tick(self) -> None:
        self.dialog_seen = self.dialog_seen or recovery_dialog() is not None
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
        documents = self.window.documents
        text = self.window.editor.toPlainText()
        if documents.autosaver.pending:
            return False
        doc_id = documents.snapshots.doc_id
        return any(e.doc_id == doc_id and e.text == text for e in documents.store.live_entries())

    def _wait_recovery_dialog(self, _step: dict[str, Any]) -> bool:
        dialog = recovery_dialog()
        if dialog is None:
            return False
        self.offered = [_entry_json(e) for e in dialog.entries()]
        return True

    def _restore_all(self, _step: dict[str, Any]) -> bool:
        dialog = recovery_dialog()
        assert dialog is not None
        # Clicked from a fresh timer: the click runs more dialogs' code, keep it out of this loop.
        QTimer.singleShot(0, dialog.restore_all_button.click)
        return True

    def _report(self, step: dict[str, Any]) -> bool:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        record = {
            "tag": step.get("tag", ""),
            "pid": os.getpid(),
            "offered": self.offered,
            "recovery_dialog_shown": self.dialog_seen,
            "windows": [_window_json(w) for w in windows],
            **({"step": step["step"]} if "step" in step else {}),
        }
        with open(self.output, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return True


def recovery_dialog() -> RecoveryDialog | None:
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, RecoveryDialog) and widget.isVisible():
            return widget
    return None


def _entry_json(entry: RecoveryEntry) -> dict[str, Any]:
    return {
        "doc_id": entry.doc_id,
        "path": entry.path,
        "display_name": entry.display_name,
        "text": entry.text,
    }


def _window_json(window: MainWindow) -> dict[str, Any]:
    documents = window.documents
    return {
        "path": str(documents.path) if documents.path is not None else None,
        "text": window.editor.toPlainText(),
        "modified": window.editor.document().isModified(),
        "read_only": window.editor.isReadOnly(),
        "doc_id": documents.snapshots.doc_id,
        "title": window.windowTitle(),
    }


def main(argv: list[str]) -> int:
    script, output, *app_args = argv
    steps = json.loads(Path(script).read_text(encoding="utf-8"))
    app, window = open_window(app_args)
    runner = ScriptRunner(window, steps, Path(output))
    QTimer.singleShot(0, runner.tick)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
