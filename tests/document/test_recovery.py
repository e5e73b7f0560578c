"""The recovery store: entries survive their process, live editors keep theirs, restores are claimed once."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from diffedit.document import recovery
from diffedit.document.recovery import (
    ENV_STATE_DIR,
    RecoveryEntry,
    RecoveryStore,
    RecoveryWriteError,
    UnsafeRecoveryFolder,
    default_state_dir,
    new_doc_id,
    open_recovery_store,
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


def test_recovery_files_are_private_and_written_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RecoveryStore(tmp_path).open()
    first = store.save(entry("first version\n" * 1000))
    (final,) = store.folder.glob("*.json")
    assert final.stat().st_mode & 0o077 == 0
    # While the next version is written, the entry on disk is the complete previous one at every moment,
    # and the new one arrives by a rename from a temporary file in the same folder.
    seen: list[str] = []
    replaced: list[tuple[Path, Path]] = []
    real_write, real_replace = os.write, os.replace

    def write_and_look(fd: int, data: bytes) -> int:
        seen.append(json.loads(final.read_text(encoding="utf-8"))["text"])
        return real_write(fd, data[: max(1, len(data) // 3)])  # short writes: several chances to look

    def replace_and_note(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        replaced.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "write", write_and_look)
    monkeypatch.setattr(os, "replace", replace_and_note)
    store.save(RecoveryEntry(**{**first.__dict__, "text": "second version\n" * 1000}))
    monkeypatch.undo()
    assert len(seen) >= 3 and set(seen) == {"first version\n" * 1000}
    assert [(src.parent, dst) for src, dst in replaced] == [(store.folder, final)]
    assert not list(store.folder.glob(".*.tmp"))
    data = json.loads(final.read_text(encoding="utf-8"))
    assert data["format"] == 1 and data["text"] == "second version\n" * 1000
    assert final.stat().st_mode & 0o077 == 0


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


# ------------------------------------------------------------------------------------------ a planted folder


def _plant(folder: Path, mode: int = 0o777) -> Path:
    """What another local user can do in /tmp: a recovery folder open to all, with a fake entry in it."""
    (folder / "recovery").mkdir(parents=True)
    os.chmod(folder / "recovery", mode)
    fake = RecoveryEntry(doc_id=new_doc_id(), path="/home/victim/notes.md", display_name="notes.md", text="x")
    owner = new_doc_id()
    (folder / "recovery" / f"{fake.doc_id}.{owner}.json").write_text(
        json.dumps({**fake.to_json(), "owner": owner}), encoding="utf-8"
    )
    return folder / "recovery"


def test_a_folder_others_can_write_is_never_used_nor_read(tmp_path: Path) -> None:
    planted = _plant(tmp_path)
    with pytest.raises(UnsafeRecoveryFolder, match=r"mode 0?o?777"):
        RecoveryStore(tmp_path).open()
    assert RecoveryStore(tmp_path).pending() == []  # the fake entry is never offered
    assert len(list(planted.glob("*.json"))) == 1  # nor deleted: it is not ours to judge


def test_a_folder_owned_by_someone_else_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = RecoveryStore(tmp_path).open()
    store.save(entry("mine\n"))
    store.close()
    folder = store.folder
    real_stat = os.stat

    def someone_elses(path: str | os.PathLike[str], *args: object, **kwargs: object) -> os.stat_result:
        st = real_stat(path, *args, **kwargs)  # type: ignore[arg-type]
        if Path(path) == folder:
            fields = list(st)
            fields[stat.ST_UID] = st.st_uid + 1
            return os.stat_result(fields)
        return st

    monkeypatch.setattr(recovery.os, "stat", someone_elses)
    with pytest.raises(UnsafeRecoveryFolder, match="belongs to user"):
        RecoveryStore(tmp_path).open()
    assert RecoveryStore(tmp_path).pending() == []
    monkeypatch.undo()
    assert [e.text for e in RecoveryStore(tmp_path).open().pending()] == ["mine\n"]


def test_an_unusable_state_folder_falls_back_to_the_private_runtime_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "state"
    blocked.write_text("a file where the folder should be")
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    store, warning = open_recovery_store(blocked)
    assert store.folder == runtime / "diffedit" / "recovery"
    assert str(blocked / "recovery") in warning and str(store.folder) in warning
    store.close()


def test_a_planted_fallback_is_refused_for_a_private_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "state"
    blocked.write_text("not a folder")
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    os.chmod(runtime, 0o777)  # not usable: others may write there
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(recovery.tempfile, "tempdir", str(temp))
    # Another user pre-creates what a fixed fallback name would be, open to all, with a fake entry.
    planted = _plant(temp / f"diffedit-state-{os.getuid()}-planted")
    store, _warning = open_recovery_store(blocked)
    assert store.folder.parent.parent == temp and store.folder != planted
    assert stat.S_IMODE(os.stat(store.folder.parent).st_mode) == 0o700
    assert store.pending() == []
    store.save(entry("kept here\n"))
    store.close()
    # The next start finds the same private folder again, and its entries.
    again, _ = open_recovery_store(blocked)
    assert again.folder == store.folder
    assert [e.text for e in again.pending()] == ["kept here\n"]
    again.close()


# ------------------------------------------------------------------------------------------ full disk


def test_a_full_disk_names_the_folder_and_the_way_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RecoveryStore(tmp_path).open()

    def enospc(*_args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", enospc)
    with pytest.raises(RecoveryWriteError) as info:
        store.save(entry())
    monkeypatch.undo()
    message = str(info.value)
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC
    assert "[Errno" not in message and "\n" not in message
    assert str(store.folder) in message and "disk is full" in message and "free some space" in message.lower()
    assert ENV_STATE_DIR in message  # the other way out: keep recovery copies on another disk
    assert not list(store.folder.glob(".*.tmp"))


# ------------------------------------------------------------------------------------------ before a rewrite


def test_the_text_before_a_rewrite_is_kept_with_the_entry_and_offered(tmp_path: Path) -> None:
    old = RecoveryStore(tmp_path).open()
    doc = old.save(entry("after the rewrite\n", before_rewrite="typed, then rewritten away\n"))
    old.close()
    store = RecoveryStore(tmp_path).open()
    (pending,) = store.pending()
    assert pending.before_rewrite == "typed, then rewritten away\n"
    assert pending.versions() == [
        ("current text", "after the rewrite\n"),
        ("before the last rewrite", "typed, then rewritten away\n"),
    ]
    adopted = store.adopt(pending)
    assert adopted is not None and adopted.before_rewrite == "typed, then rewritten away\n"
    # Saved or Keep: the entry is written again without it.
    store.save(RecoveryEntry(**{**adopted.__dict__, "before_rewrite": None}))
    assert [e.versions() for e in store.live_entries()] == [[("current text", "after the rewrite\n")]]
    assert doc.doc_id == adopted.doc_id


def test_a_malformed_before_rewrite_is_unreadable_not_a_crash(tmp_path: Path) -> None:
    store = RecoveryStore(tmp_path).open()
    bad = {**entry().to_json(), "before_rewrite": 5}
    (store.folder / f"{bad['doc_id']}.{new_doc_id()}.json").write_text(json.dumps(bad), encoding="utf-8")
    assert store.pending() == []
