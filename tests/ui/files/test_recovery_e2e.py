"""Kill test: the real app, SIGKILLed after autosave, offers every unsaved text at the next start.

Four app processes run the real app (``diffedit.app.open_window``, as ``python -m diffedit`` does) under
offscreen Qt with config and state in temp folders, each driven by a script (``scripted_app.py``, here in
tests/; the product knows nothing of it):
  A opens a saved file and types into it; B, started while A runs, types into an Untitled document and
  must not be offered A's live text; both are SIGKILLed once autosave wrote their text.
  C starts afterwards, is offered both, restores both; they come back exactly, unsaved, and the file
  on disk is still the one A opened.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

SAVED_TEXT = "# Notes\r\n\r\nWritten and saved.\r\n"


class App:
    """One app process and its script's reports."""

    def __init__(self, tmp: Path, name: str, steps: list[dict[str, Any]], *args: str) -> None:
        self.output = tmp / f"{name}.jsonl"
        script = tmp / f"{name}.json"
        script.write_text(json.dumps(steps), encoding="utf-8")
        env = {
            **os.environ,
            "QT_QPA_PLATFORM": "offscreen",
            "DIFFEDIT_CONFIG_DIR": str(tmp / "config"),
            "DIFFEDIT_STATE_DIR": str(tmp / "state"),
            "PYTHONPATH": str(ROOT),
            "HF_HUB_OFFLINE": "1",
        }
        self.log = open(tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed in kill()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.ui.files.scripted_app",
                str(script),
                str(self.output),
                "--no-model",
                *args,
            ],
            cwd=tmp,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_for(self, tag: str, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in self.records():
                if record["tag"] in (tag, "timeout"):
                    assert record["tag"] == tag, f"script step timed out: {record}"
                    return record
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.kill()
        log = Path(self.log.name).read_text(errors="replace")[-3000:]
        raise AssertionError(f"no report {tag!r} (exit {self.process.returncode}); log:\n{log}")

    def records(self) -> list[dict[str, Any]]:
        if not self.output.exists():
            return []
        return [json.loads(line) for line in self.output.read_text(encoding="utf-8").splitlines() if line]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.log.close()


def test_killed_app_offers_both_documents_and_restores_them_exactly(tmp_path: Path) -> None:
    saved = tmp_path / "notes.md"
    saved.write_bytes(SAVED_TEXT.encode())
    typed_saved = "\nAdded after the save — not saved yet. ✓\n"
    typed_untitled = "Untitled thoughts,\nnever saved anywhere.\n"

    a = App(
        tmp_path,
        "a",
        [{"do": "type", "text": typed_saved}, {"do": "wait_autosave"}, {"do": "report", "tag": "ready"}],
        str(saved),
    )
    apps = [a]
    try:
        ready_a = a.wait_for("ready")["windows"][0]
        b = App(
            tmp_path,
            "b",
            [
                {"do": "wait", "ms": 1500},  # the recovery offer, if any, would show now
                {"do": "type", "text": typed_untitled},
                {"do": "wait_autosave"},
                {"do": "report", "tag": "ready"},
            ],
        )
        apps.append(b)
        report_b = b.wait_for("ready")
        assert not report_b["recovery_dialog_shown"]  # A is alive: its entry is not B's to take
        ready_b = report_b["windows"][0]
        a.kill()
        b.kill()

        assert ready_a["modified"] and ready_a["path"] == str(saved)
        assert ready_a["text"] == SAVED_TEXT.replace("\r\n", "\n") + typed_saved
        assert ready_b["modified"] and ready_b["path"] is None and ready_b["text"].endswith(typed_untitled)

        c = App(
            tmp_path,
            "c",
            [
                {"do": "wait_recovery_dialog"},
                {"do": "report", "tag": "offered"},
                {"do": "restore_all"},
                {"do": "wait", "ms": 1500},
                {"do": "report", "tag": "restored"},
            ],
        )
        apps.append(c)
        offered = {e["doc_id"]: e for e in c.wait_for("offered")["offered"]}
        assert offered.keys() == {ready_a["doc_id"], ready_b["doc_id"]}
        assert offered[ready_a["doc_id"]]["text"] == ready_a["text"]
        assert offered[ready_a["doc_id"]]["display_name"] == "notes.md"
        assert offered[ready_b["doc_id"]]["text"] == ready_b["text"]
        assert offered[ready_b["doc_id"]]["path"] is None

        windows = {w["doc_id"]: w for w in c.wait_for("restored")["windows"]}
        assert windows.keys() == {ready_a["doc_id"], ready_b["doc_id"]}
        for before in (ready_a, ready_b):
            after = windows[before["doc_id"]]
            assert (after["text"], after["path"], after["modified"]) == (before["text"], before["path"], True)
        c.kill()
        assert saved.read_bytes() == SAVED_TEXT.encode()  # recovery never writes the user's file

        # The restored documents were adopted by C, so after C dies too they are still recoverable.
        d = App(tmp_path, "d", [{"do": "wait_recovery_dialog"}, {"do": "report", "tag": "offered"}])
        apps.append(d)
        again = {e["doc_id"] for e in d.wait_for("offered")["offered"]}
        assert again == {ready_a["doc_id"], ready_b["doc_id"]}
    finally:
        for app in apps:
            app.kill()


def test_a_file_deleted_while_open_is_offered_after_a_kill(tmp_path: Path) -> None:
    saved = tmp_path / "notes.md"
    saved.write_bytes(SAVED_TEXT.encode())
    a = App(
        tmp_path,
        "a",
        [{"do": "report", "tag": "opened"}, {"do": "wait_autosave"}, {"do": "report", "tag": "ready"}],
        str(saved),
    )
    apps = [a]
    try:
        opened = a.wait_for("opened")["windows"][0]
        assert not opened["modified"]
        saved.unlink()  # `rm notes.md` while it is open, unedited
        ready = a.wait_for("ready")["windows"][0]
        a.kill()
        assert ready["modified"] and ready["text"] == SAVED_TEXT.replace("\r\n", "\n")

        b = App(tmp_path, "b", [{"do": "wait_recovery_dialog"}, {"do": "report", "tag": "offered"}])
        apps.append(b)
        offered = b.wait_for("offered")["offered"]
        assert [(e["doc_id"], e["path"], e["text"]) for e in offered] == [
            (ready["doc_id"], str(saved), ready["text"])
        ]
    finally:
        for app in apps:
            app.kill()
