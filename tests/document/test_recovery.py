"""The recovery store: entries survive their process, live editors keep theirs, restores are claimed once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from diffedit.document.recovery import (
    ENV_STATE_DIR,
    RecoveryEntry,
    RecoveryStore,
    default_state_dir,
    new_doc_id,
)


def entry(text: str = "Unsaved words.\n", path: str | None = None, **kw: object) -> RecoveryEntry:
    return RecoveryEntry(
        doc_id=str(kw.pop("doc_id", new_doc_id())),
        path=path,
        display_name=Path(path).name if path else "Untitled 1",
        text=text,
        **kw,  # type: ignore[arg-type]
    )


def test_state_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_STATE_DIR, str(tmp_path))
    assert default_state_dir() == tmp_path
    assert RecoveryStore().folder == tmp_path / "recovery"
    monkeypatch.delenv(ENV_STATE_DIR)
    assert default_state_dir().name.lower() == "diffedit" or "diffedit" in str(default_state_dir()).lower()


def test_entries_of_a_closed_instance_are_pending_and_exact(tmp_path: Path) -> None:
    text = "Crème brûlée\r\n is ✓ and 漢字, with a lone \ud800 surrogate\n"
    first = RecoveryStore(tmp_path).open()
    untitled = first.save(entry(text))
    saved = first.save(
        entry("draft\n", path="/home/me/notes.md", encoding="cp1252", newline="\r\n", bom=False)
    )
    assert first.pending() == []  # our own entries are live, not pending
    first.close()

    second = RecoveryStore(tmp_path).open()
    pending = {e.doc_id: e for e in second.pending()}
    assert pending.keys() == {untitled.doc_id, saved.doc_id}
    assert pending[untitled.doc_id].text == text
    assert pending[untitled.doc_id].is_untitled
    got = pending[saved.doc_id]
    assert (got.path, got.encoding, got.newline, got.display_name) == (
        "/home/me/notes.md",
        "cp1252",
        "\r\n",
        "notes.md",
    )


def test_save_replaces_the_previous_version_and_remove_forgets(tmp_path: Path) -> None:
    store = RecoveryStore(tmp_path).open()
    doc = entry("v1\n")
    store.save(doc)
    store.save(RecoveryEntry(**{**doc.__dict__, "text": "v2\n"}))
    assert [e.text for e in store.live_entries()] == ["v2\n"]
    store.remove(doc.doc_id)
    assert store.live_entries() == []
    store.remove(doc.doc_id)  # removing twice is harmless
    store.close()
    assert RecoveryStore(tmp_path).open().pending() == []


def test_close_without_keeping_entries_leaves_nothing(tmp_path: Path) -> None:
    store = RecoveryStore(tmp_path).open()
    store.save(entry())
    store.close(keep_entries=False)
    assert RecoveryStore(tmp_path).open().pending() == []


def test_a_second_running_instance_does_not_steal_live_entries(tmp_path: Path) -> None:
    first = RecoveryStore(tmp_path).open()
    live = first.save(entry("still being edited\n"))
    second = RecoveryStore(tmp_path).open()
    assert second.pending() == []
    assert second.adopt(live) is None
    first.close()
    assert [e.doc_id for e in second.pending()] == [live.doc_id]


def test_recovery_files_are_private_and_written_atomically(tmp_path: Path) -> None:
    store = RecoveryStore(tmp_path).open()
    store.save(entry())
    files = list(store.folder.glob("*.json"))
    assert len(files) == 1
    assert files[0].stat().st_mode & 0o077 == 0
    assert not list(store.folder.glob(".*.tmp"))
    data = json.loads(files[0].read_text(encoding="utf-8"))
    assert data["format"] == 1 and data["text"] == "Unsaved words.\n"


def test_unreadable_files_are_skipped_and_kept(tmp_path: Path) -> None:
    store = RecoveryStore(tmp_path).open()
    junk = store.folder / f"{new_doc_id()}.{new_doc_id()}.json"
    junk.write_text("{ not json", encoding="utf-8")
    future = store.folder / f"{new_doc_id()}.{new_doc_id()}.json"
    future.write_text(json.dumps({"format": 99, "text": "x"}), encoding="utf-8")
    assert store.pending() == []
    assert junk.exists() and future.exists()


def test_adopt_claims_once_and_the_entry_becomes_live(tmp_path: Path) -> None:
    old = RecoveryStore(tmp_path).open()
    doc = old.save(entry("recover me\n"))
    old.close()
    a = RecoveryStore(tmp_path).open()
    b = RecoveryStore(tmp_path).open()
    (stale,) = a.pending()
    assert b.pending() == [stale]
    adopted = a.adopt(stale)
    assert adopted is not None and adopted.text == "recover me\n" and adopted.owner == a.instance_id
    assert b.adopt(stale) is None
    assert b.pending() == []  # now a's live entry
    assert [e.doc_id for e in a.live_entries()] == [doc.doc_id]
    a.close()
    assert [e.text for e in b.pending()] == ["recover me\n"]  # still safe if a dies in turn


def test_discard_moves_the_entry_aside(tmp_path: Path) -> None:
    old = RecoveryStore(tmp_path).open()
    old.save(entry("unwanted\n"))
    old.close()
    store = RecoveryStore(tmp_path).open()
    (stale,) = store.pending()
    store.discard(stale)
    assert store.pending() == []
    kept = list(store.discarded_folder.glob("*.json"))
    assert len(kept) == 1 and "unwanted" in kept[0].read_text(encoding="utf-8")


def test_newest_version_wins_when_two_dead_instances_hold_one_document(tmp_path: Path) -> None:
    doc_id = new_doc_id()
    for text, when in (("older\n", 1000.0), ("newer\n", 2000.0)):
        store = RecoveryStore(tmp_path).open()
        store.save(entry(text, doc_id=doc_id, saved_at=when))
        store.close()
    store = RecoveryStore(tmp_path).open()
    (pending,) = store.pending()
    assert pending.text == "newer\n"
    store.adopt(pending)
    assert store.pending() == []


def test_preview_shows_the_head_and_counts(tmp_path: Path) -> None:
    text = "".join(f"line {i} has four words\n" for i in range(40))
    p = RecoveryStore.preview(entry(text), max_lines=3)
    assert p.head.startswith("line 0 has four words\nline 1") and p.head.endswith("…")
    assert (p.lines, p.words, p.characters) == (40, 200, len(text))
    short = RecoveryStore.preview(entry("just this"))
    assert (short.head, short.lines, short.words) == ("just this", 1, 2)


def test_bad_doc_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        RecoveryStore(tmp_path).save(entry(doc_id="../../etc/passwd"))


CHILD = textwrap.dedent(
    """
    import sys, time
    from diffedit.document.recovery import RecoveryEntry, RecoveryStore
    store = RecoveryStore(sys.argv[1]).open()
    store.save(RecoveryEntry(doc_id=sys.argv[2], path=None, display_name="Untitled", text=sys.argv[3]))
    print("saved", flush=True)
    time.sleep(60)
    """
)


def spawn_child(state: Path, doc_id: str, text: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(state), doc_id, text],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "saved"
    return child


def test_entries_of_a_killed_process_are_recoverable_but_not_while_it_lives(tmp_path: Path) -> None:
    doc_id = new_doc_id()
    child = spawn_child(tmp_path, doc_id, "typed before the crash\n")
    try:
        store = RecoveryStore(tmp_path).open()
        assert store.pending() == []  # alive: its entry is live
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        deadline = time.monotonic() + 5
        while not store.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        (stale,) = store.pending()
        assert (stale.doc_id, stale.text) == (doc_id, "typed before the crash\n")
    finally:
        child.kill()
        child.wait(timeout=10)
