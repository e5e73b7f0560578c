"""Reading and writing documents: round trips, bad input, and failed saves that leave the file intact."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffedit.document import storage
from diffedit.document.storage import (
    BinaryFile,
    DiskState,
    EncodingProblem,
    FileChangedOnDisk,
    FileTooLarge,
    StorageError,
    check_unchanged,
    read_document,
    save_caveats,
    write_document,
)

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize(
    ("raw", "encoding", "bom", "newline"),
    [
        (b"# Title\n\nSome text.\n", "utf-8", False, "\n"),
        (b"# Title\r\n\r\nSome text.\r\n", "utf-8", False, "\r\n"),
        (b"# Title\r\rOld Mac text.\r", "utf-8", False, "\r"),
        (b"\xef\xbb\xbf# Caf\xc3\xa9\r\n", "utf-8", True, "\r\n"),
        ("\ufeff# Grüße\r\nzwei\r\n".encode("utf-16-le"), "utf-16-le", True, "\r\n"),
        ("\ufeff# Grüße\nzwei\n".encode("utf-16-be"), "utf-16-be", True, "\n"),
        (b"no newline at all", "utf-8", False, "\n"),
        (b"", "utf-8", False, "\n"),
    ],
)
def test_unchanged_text_round_trips_byte_for_byte(
    tmp_path: Path, raw: bytes, encoding: str, bom: bool, newline: str
) -> None:
    path = write_bytes(tmp_path / "doc.md", raw)
    doc = read_document(path)
    assert (doc.encoding, doc.bom, doc.newline) == (encoding, bom, newline)
    assert "\r" not in doc.text
    assert "\ufeff" not in doc.text
    write_document(path, doc.text, like=doc)
    assert path.read_bytes() == raw


def test_crlf_file_stays_crlf_after_an_edit(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "doc.md", b"one\r\ntwo\r\n")
    doc = read_document(path)
    assert doc.text == "one\ntwo\n"
    saved = write_document(path, doc.text + "three\n", like=doc)
    assert path.read_bytes() == b"one\r\ntwo\r\nthree\r\n"
    assert saved.newline == "\r\n"
    assert saved.sha256 == read_document(path).sha256


def test_bom_is_kept_and_never_appears_in_the_text(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "doc.md", b"\xef\xbb\xbfhello\n")
    doc = read_document(path)
    assert doc.text == "hello\n"
    write_document(path, "hello again\n", like=doc)
    assert path.read_bytes() == b"\xef\xbb\xbfhello again\n"


def test_mixed_newlines_are_kept_and_new_lines_take_the_dominant_style(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "doc.md", b"a\r\nb\r\nc\nd\r\n")
    doc = read_document(path)
    assert doc.newline == "\r\n"
    assert doc.mixed_newlines
    write_document(path, doc.text, like=doc)
    assert path.read_bytes() == b"a\r\nb\r\nc\nd\r\n"  # unedited: byte for byte
    write_document(path, "new\n" + doc.text.replace("b\n", "b\nadded\n"), like=doc)
    # Lines before and after the edits keep their own endings; the edited region takes the dominant one.
    assert path.read_bytes() == b"new\r\na\r\nb\r\nadded\r\nc\nd\r\n"


def test_cp1252_opened_explicitly_and_saved_back_in_cp1252(tmp_path: Path) -> None:
    raw = "\u201cQuoted\u201d \u2014 caf\u00e9 \u20ac5\r\n".encode("cp1252")
    path = write_bytes(tmp_path / "legacy.md", raw)
    with pytest.raises(EncodingProblem):
        read_document(path)
    doc = read_document(path, encoding="cp1252")
    assert doc.text == "\u201cQuoted\u201d \u2014 caf\u00e9 \u20ac5\n"
    assert (doc.encoding, doc.newline) == ("cp1252", "\r\n")
    write_document(path, doc.text, like=doc)
    assert path.read_bytes() == raw
    write_document(path, doc.text.replace("5", "6"), like=doc)
    assert path.read_bytes() == raw.replace(b"5", b"6")


def test_text_that_the_encoding_cannot_hold_is_refused_before_touching_the_file(tmp_path: Path) -> None:
    raw = "caf\u00e9\n".encode("cp1252")
    path = write_bytes(tmp_path / "legacy.md", raw)
    doc = read_document(path, encoding="cp1252")
    with pytest.raises(StorageError) as info:
        write_document(path, "caf\u00e9 \u6f22\n", like=doc)
    assert "U+6F22" in str(info.value) and "line 1" in str(info.value)
    assert path.read_bytes() == raw


def test_new_file_is_utf8_with_lf_and_honours_umask(tmp_path: Path) -> None:
    path = tmp_path / "new.md"
    old = os.umask(0o027)
    try:
        doc = write_document(path, "first line\nsecond\n")
    finally:
        os.umask(old)
    assert path.read_bytes() == b"first line\nsecond\n"
    assert (doc.encoding, doc.bom, doc.newline) == ("utf-8", False, "\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert check_unchanged(path, doc) is DiskState.UNCHANGED


def test_file_mode_is_preserved(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "doc.md", b"text\n")
    path.chmod(0o604)
    write_document(path, "changed\n", like=read_document(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o604


def test_symlink_is_followed_and_kept(tmp_path: Path) -> None:
    real = write_bytes(tmp_path / "real.md", b"text\n")
    link = tmp_path / "link.md"
    link.symlink_to(real)
    write_document(link, "changed\n", like=read_document(link))
    assert link.is_symlink()
    assert real.read_bytes() == b"changed\n"


def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "doc.md", b"text\n")
    for i in range(3):
        write_document(path, f"version {i}\n", like=read_document(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.md"]


# ------------------------------------------------------------------------------------------ bad input


def test_non_utf8_file_offers_best_guesses(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "legacy.md", b"line one\n\x93smart quotes\x94\n")
    with pytest.raises(EncodingProblem) as info:
        read_document(path)
    err = info.value
    assert err.guesses == ["cp1252", "latin-1"]
    assert isinstance(err, StorageError)
    message = str(err)
    assert "\n" not in message
    assert "legacy.md" in message and "line 2" in message and "0x93" in message and "cp1252" in message


def test_bytes_cp1252_cannot_decode_still_get_latin1(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "odd.md", b"abc \x81 def\n")
    with pytest.raises(EncodingProblem) as info:
        read_document(path)
    assert info.value.guesses == ["latin-1"]


def test_explicit_encoding_that_does_not_fit_raises_encoding_problem(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "doc.md", "\u00e9\u00e9\n".encode("latin-1"))
    with pytest.raises(EncodingProblem, match="UTF-8"):
        read_document(path, encoding="utf-8")
    with pytest.raises(StorageError, match="not an encoding"):
        read_document(path, encoding="klingon")


def test_read_only_look_replaces_undecodable_bytes_and_refuses_to_save_over(tmp_path: Path) -> None:
    raw = b"ok \xc3\x28 rest\n"
    path = write_bytes(tmp_path / "doc.md", raw)
    doc = read_document(path, encoding="utf-8", errors="replace")
    assert doc.lossy and "\ufffd" in doc.text
    with pytest.raises(StorageError, match="read-only"):
        write_document(path, doc.text, like=doc)
    assert path.read_bytes() == raw
    copy = write_document(tmp_path / "copy.md", doc.text, like=doc)
    assert not copy.lossy


def test_utf16_with_bom_is_detected_even_though_it_has_nul_bytes(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "wide.md", "\ufeffhello\n".encode("utf-16-le"))
    assert read_document(path).text == "hello\n"


@pytest.mark.parametrize(
    "raw",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4,
        b"ELF" + b"\x00" * 100,
        bytes(range(1, 32)) * 50,  # no NUL, decodes as UTF-8, but it is control characters
    ],
)
def test_binary_files_are_refused(tmp_path: Path, raw: bytes) -> None:
    path = write_bytes(tmp_path / "image.md", raw)
    with pytest.raises(BinaryFile, match="binary"):
        read_document(path)


def test_a_50_mb_file_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "huge.md"
    with open(path, "wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse: costs no disk space
    with pytest.raises(FileTooLarge) as info:
        read_document(path)
    message = str(info.value)
    assert "huge.md" in message and "50.0 MB" in message and "20.0 MB" in message
    assert info.value.size == 50 * 1024 * 1024


def test_size_limit_is_adjustable(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "doc.md", b"x" * 2000)
    with pytest.raises(FileTooLarge):
        read_document(path, max_bytes=1000)
    assert len(read_document(path, max_bytes=2000).text) == 2000


def test_missing_file_gives_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError) as info:
        read_document(tmp_path / "nope.md")
    assert "nope.md" in str(info.value) and "does not exist" in str(info.value)
    assert info.value.errno == errno.ENOENT


def test_folder_is_not_a_document(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="folder"):
        read_document(tmp_path)


def test_unreadable_file_gives_a_clear_error_simulated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_bytes(tmp_path / "secret.md", b"x")

    def deny(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("builtins.open", deny)
    with pytest.raises(StorageError) as info:
        read_document(path)
    monkeypatch.undo()
    assert "secret.md" in str(info.value) and "permission denied" in str(info.value)
    assert info.value.errno == errno.EACCES


@pytest.mark.skipif(IS_ROOT, reason="root reads any file")
def test_unreadable_file_gives_a_clear_error(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "secret.md", b"x")
    path.chmod(0)
    with pytest.raises(StorageError, match="permission denied"):
        read_document(path)


# ------------------------------------------------------------------------------------------ failed saves

ORIGINAL = b"# Keep me\r\n\r\nEvery word.\r\n"


@pytest.fixture
def original(tmp_path: Path) -> Path:
    return write_bytes(tmp_path / "doc.md", ORIGINAL)


def enospc(*_args: object, **_kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("failing", ["write", "fsync", "replace", "fchmod"])
def test_disk_full_at_any_step_leaves_the_original_byte_identical(
    original: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    doc = read_document(original)
    monkeypatch.setattr(storage.os, failing, enospc)
    with pytest.raises(StorageError) as info:
        write_document(original, "new text that must not land\n", like=doc)
    monkeypatch.undo()
    message = str(info.value)
    assert "\n" not in message
    assert "doc.md" in message and "disk is full" in message and "Save As" in message
    assert "not changed" in message
    assert info.value.errno == errno.ENOSPC
    assert original.read_bytes() == ORIGINAL
    assert sorted(p.name for p in original.parent.iterdir()) == ["doc.md"]


def test_a_short_write_then_failure_leaves_the_original(
    original: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    calls = []

    def half_then_fail(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(storage.os, "write", half_then_fail)
    with pytest.raises(StorageError, match="input/output"):
        write_document(original, "x" * 1000, like=read_document(original))
    monkeypatch.undo()
    assert original.read_bytes() == ORIGINAL
    assert len(calls) == 2


def test_permission_denied_in_folder_is_reported(original: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def deny_temp(path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
        if str(path).endswith(".tmp"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, mode)

    monkeypatch.setattr(storage.os, "open", deny_temp)
    with pytest.raises(StorageError, match="permission denied") as info:
        write_document(original, "new\n", like=read_document(original))
    monkeypatch.undo()
    assert "Save As" in str(info.value)
    assert original.read_bytes() == ORIGINAL


@pytest.mark.skipif(IS_ROOT, reason="root writes into read-only folders")
def test_read_only_folder_leaves_the_original(original: Path) -> None:
    doc = read_document(original)
    original.parent.chmod(0o555)
    try:
        with pytest.raises(StorageError, match="permission denied"):
            write_document(original, "new\n", like=doc)
    finally:
        original.parent.chmod(0o755)
    assert original.read_bytes() == ORIGINAL


def test_read_only_file_is_not_replaced(original: Path) -> None:
    doc = read_document(original)
    original.chmod(0o444)
    assert not storage.file_is_writable(original)
    with pytest.raises(StorageError, match="read-only") as info:
        write_document(original, "new\n", like=doc)
    assert "Save As" in str(info.value)
    assert original.read_bytes() == ORIGINAL
    original.chmod(0o644)
    assert storage.file_is_writable(original)


def test_missing_folder_is_reported(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="folder does not exist"):
        write_document(tmp_path / "gone" / "doc.md", "text\n")


# ------------------------------------------------------------------------------------------ disk state


def test_check_unchanged_sees_modification_touch_and_deletion(original: Path) -> None:
    doc = read_document(original)
    assert check_unchanged(original, doc) is DiskState.UNCHANGED
    os.utime(original, ns=(1, 1))  # touched, same bytes
    assert check_unchanged(original, doc) is DiskState.UNCHANGED
    original.write_bytes(ORIGINAL.replace(b"Keep", b"Lose"))  # same size, different bytes
    assert check_unchanged(original, doc) is DiskState.MODIFIED
    original.write_bytes(b"short")
    assert check_unchanged(original, doc) is DiskState.MODIFIED
    original.unlink()
    assert check_unchanged(original, doc) is DiskState.DELETED


def test_written_document_is_the_new_baseline(original: Path) -> None:
    saved = write_document(original, "new text\n", like=read_document(original))
    assert check_unchanged(original, saved) is DiskState.UNCHANGED
    assert saved == read_document(original)


# -------------------------------------------------------------------------------------- exact round trips

# Characters that text widgets and naive newline handling are known to rewrite.
SPECIAL_CHARACTERS = "\u00a0\u2028\u2029\ufdd0\ufdd1\ufeff\u0085\ufffe\uffff\U0010ffff\U0001f600\x0c\t"
NEWLINE_STYLES = {"lf": ["\n"], "crlf": ["\r\n"], "cr": ["\r"], "mixed": ["\n", "\r\n", "\r"]}


def _line_text() -> st.SearchStrategy[str]:
    # Every plane, no surrogates (not encodable), no newlines (added below) and no C0 controls other
    # than tab and form feed (a file full of those is refused as binary, rightly).
    return st.text(
        st.one_of(
            st.characters(blacklist_categories=("Cs", "Cc")),
            st.sampled_from(SPECIAL_CHARACTERS),
        ),
        max_size=40,
    )


@st.composite
def _file_text(draw: st.DrawFn) -> str:
    endings = NEWLINE_STYLES[draw(st.sampled_from(sorted(NEWLINE_STYLES)))]
    lines = draw(st.lists(_line_text(), max_size=12))
    out = []
    for line in lines:
        out.append(line + draw(st.sampled_from(endings)))
    if draw(st.booleans()):
        out.append(draw(_line_text()))  # a last line without a newline
    return "".join(out)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_file_text(), encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]))
def test_open_then_save_is_byte_identical_whatever_the_characters(
    tmp_path: Path, text: str, encoding: str
) -> None:
    raw = text.encode(encoding)
    path = write_bytes(tmp_path / "any.md", raw)
    doc = read_document(path)
    write_document(path, doc.text, like=doc)
    assert path.read_bytes() == raw
    # And an edit that is undone (the same text again) is byte-identical too.
    edited = write_document(path, doc.text + "x", like=doc)
    write_document(path, doc.text, like=doc)
    assert path.read_bytes() == raw
    assert edited.size != len(raw)


@pytest.mark.parametrize("char", ["\u00a0", "\u2028", "\u2029", "\ufdd0", "\ufdd1"])
def test_characters_qt_treats_specially_survive_storage(tmp_path: Path, char: str) -> None:
    raw = f"a{char}b\r\nc{char}\r\n".encode()
    path = write_bytes(tmp_path / "doc.md", raw)
    doc = read_document(path)
    assert char in doc.text
    write_document(path, doc.text, like=doc)
    assert path.read_bytes() == raw


# ------------------------------------------------------------------------------------------ special files


def _fifo(tmp_path: Path) -> Path:
    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)
    return fifo


def _call_with_timeout(fn: Callable[[], object], timeout: float = 5.0) -> BaseException | None:
    """Run ``fn`` in a thread; fail the test (instead of hanging it) if it blocks."""
    caught: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # handed to the test
            caught.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{fn} blocked for {timeout} s"
    return caught[0] if caught else None


@pytest.fixture
def unblock_fifos(tmp_path: Path) -> Iterator[None]:
    yield
    # A read that blocked on a FIFO (the bug) waits for a writer: give it one so the thread can end.
    for fifo in tmp_path.glob("*.md"):
        if stat.S_ISFIFO(os.stat(fifo).st_mode):
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def test_a_fifo_is_refused_before_opening(tmp_path: Path, unblock_fifos: None) -> None:
    fifo = _fifo(tmp_path)
    error = _call_with_timeout(lambda: read_document(fifo))
    assert isinstance(error, StorageError)
    assert "is a named pipe (FIFO), not a regular file" in str(error) and "pipe.md" in str(error)


def test_a_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sock.md"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        with pytest.raises(StorageError, match="is a socket, not a regular file"):
            read_document(path)


def test_a_device_is_refused_with_what_it_is() -> None:
    with pytest.raises(StorageError, match="is a character device, not a regular file"):
        read_document("/dev/zero")


def test_saving_over_a_fifo_is_refused_and_keeps_it(tmp_path: Path, unblock_fifos: None) -> None:
    fifo = _fifo(tmp_path)
    error = _call_with_timeout(lambda: write_document(fifo, "text\n"))
    assert isinstance(error, StorageError) and "named pipe (FIFO)" in str(error)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


# -------------------------------------------------------------------------------------- concurrent changes


def test_a_change_made_during_the_save_is_never_overwritten(
    original: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = read_document(original)
    real_fsync = os.fsync
    appended = b"Appended by another program while we saved.\r\n"

    def fsync_then_another_program_appends(fd: int) -> None:
        real_fsync(fd)
        if not (original.read_bytes().endswith(appended)):
            with open(original, "ab") as f:
                f.write(appended)

    monkeypatch.setattr(storage.os, "fsync", fsync_then_another_program_appends)
    with pytest.raises(FileChangedOnDisk) as info:
        write_document(original, "my rewrite\n", like=doc, expect=doc)
    monkeypatch.undo()
    assert original.read_bytes() == ORIGINAL + appended
    assert "changed on disk" in str(info.value) and "\n" not in str(info.value)
    assert sorted(p.name for p in original.parent.iterdir()) == ["doc.md"]
    # Unchanged: the same call saves.
    write_document(original, "my rewrite\n", like=read_document(original), expect=read_document(original))
    assert original.read_bytes() == b"my rewrite\r\n"


def test_expect_sees_a_deleted_file(original: Path) -> None:
    doc = read_document(original)
    original.unlink()
    with pytest.raises(FileChangedOnDisk, match="deleted"):
        write_document(original, "x\n", like=doc, expect=doc)
    assert not original.exists()


# -------------------------------------------------------------------------------------- what the file had


def _xattrs_supported(folder: Path) -> bool:
    probe = folder / ".xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.diffedit-probe", b"1")
    except OSError:
        return False
    finally:
        probe.unlink()
    return True


def test_extended_attributes_survive_a_save(tmp_path: Path) -> None:
    if not hasattr(os, "setxattr") or not _xattrs_supported(tmp_path):
        pytest.skip(f"user.* extended attributes are not supported on {tmp_path}'s file system")
    path = write_bytes(tmp_path / "doc.md", b"text\n")
    os.setxattr(path, "user.origin", b"https://example.org/doc")
    os.setxattr(path, "user.tags", b"draft,\x00binary")
    write_document(path, "changed\n", like=read_document(path))
    assert path.read_bytes() == b"changed\n"
    assert os.getxattr(path, "user.origin") == b"https://example.org/doc"
    assert os.getxattr(path, "user.tags") == b"draft,\x00binary"


def _acl(entries: list[tuple[int, int, int]]) -> bytes:
    """A system.posix_acl_access value: version 2, then (tag, permissions, id) entries."""
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)


ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER = 0x01, 0x02, 0x04, 0x10, 0x20
NO_ID = 0xFFFFFFFF


def test_an_acl_survives_a_save_and_the_group_bits_do_not_widen(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "doc.md", b"text\n")
    # Owner rw, user 12345 rw, owning group read-only, mask rw, others nothing.
    acl = _acl(
        [
            (ACL_USER_OBJ, 6, NO_ID),
            (ACL_USER, 6, 12345),
            (ACL_GROUP_OBJ, 4, NO_ID),
            (ACL_MASK, 6, NO_ID),
            (ACL_OTHER, 0, NO_ID),
        ]
    )
    try:
        os.setxattr(path, "system.posix_acl_access", acl)
    except OSError as exc:
        pytest.skip(f"POSIX ACLs are not supported here ({exc})")
    before_mode = stat.S_IMODE(path.stat().st_mode)
    write_document(path, "changed\n", like=read_document(path))
    assert os.getxattr(path, "system.posix_acl_access") == acl
    assert stat.S_IMODE(path.stat().st_mode) == before_mode


@pytest.mark.parametrize("bits", [stat.S_ISUID, stat.S_ISGID, stat.S_ISUID | stat.S_ISGID])
def test_setuid_and_setgid_bits_survive_a_save(tmp_path: Path, bits: int) -> None:
    path = write_bytes(tmp_path / "script.md", b"text\n")
    path.chmod(0o754 | bits)
    if stat.S_IMODE(path.stat().st_mode) != 0o754 | bits:
        pytest.skip("this file system or user cannot set those bits")
    write_document(path, "changed\n", like=read_document(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o754 | bits


def test_a_hard_link_is_named_before_saving(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "doc.md", b"text\n")
    assert save_caveats(path) == []
    os.link(path, tmp_path / "other-name.md")
    (caveat,) = save_caveats(path)
    assert "hard link" in caveat and "other-name.md" not in caveat and "old text" in caveat


def test_an_attribute_that_cannot_be_copied_is_named_before_saving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not hasattr(os, "setxattr") or not _xattrs_supported(tmp_path):
        pytest.skip("no user.* extended attributes here")
    path = write_bytes(tmp_path / "doc.md", b"text\n")
    os.setxattr(path, "user.keep", b"1")
    real = os.setxattr

    def refuse(target: object, name: str, value: bytes, *args: object, **kwargs: object) -> None:
        if name == "user.keep":
            raise PermissionError(errno.EPERM, "Operation not permitted")
        real(target, name, value, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(storage.os, "setxattr", refuse)
    (caveat,) = save_caveats(path)
    assert "user.keep" in caveat
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.md"]  # the probe left nothing


def test_the_temporary_file_is_made_in_the_target_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_folder = tmp_path / "real"
    real_folder.mkdir()
    target = write_bytes(real_folder / "doc.md", b"text\n")
    link = tmp_path / "link.md"
    link.symlink_to(target)
    created: list[Path] = []
    real_open = os.open

    def spy(path: str | os.PathLike[str], flags: int, *args: int, **kwargs: object) -> int:
        if flags & os.O_CREAT:
            created.append(Path(path))
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(storage.os, "open", spy)
    write_document(link, "changed\n", like=read_document(link))
    monkeypatch.undo()
    assert created, "no temporary file was created"
    # os.replace is atomic only within one file system, so the temporary file sits beside the real target.
    assert all(p.parent == real_folder and p.name.endswith(".tmp") for p in created), created
    assert target.read_bytes() == b"changed\n"


# ------------------------------------------------------------------------------------------ litter

SLOW_SAVE = textwrap.dedent(
    """
    import os, sys, time
    from diffedit.document import storage
    real_write = os.write
    def slow_write(fd, data):
        time.sleep(0.05)
        return real_write(fd, bytes(data[:4096]))
    storage.os.write = slow_write
    print("saving", flush=True)
    storage.write_document(sys.argv[1], "x" * 400_000)
    """
)


def _killed_midway_save(path: Path) -> Path:
    """Run a slow save of ``path`` in a child process and SIGKILL it once its temporary file has bytes."""
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_SAVE, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "saving"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            temps = [p for p in path.parent.glob(f".{path.name}.*.tmp") if p.stat().st_size > 8192]
            if temps:
                break
            time.sleep(0.02)
        else:
            raise AssertionError("the child never started writing")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        child.kill()
        child.wait(timeout=10)
    (temp,) = temps
    assert temp.exists()  # the litter a killed save leaves
    return temp


@pytest.mark.parametrize("next_action", ["open", "save"])
def test_a_killed_save_leaves_no_litter_after_the_next_open_or_save(tmp_path: Path, next_action: str) -> None:
    path = write_bytes(tmp_path / "doc.md", b"the original\n")
    unrelated = write_bytes(tmp_path / ".other.md.0123abcd.tmp", b"not ours to remove")
    temp = _killed_midway_save(path)
    assert path.read_bytes() == b"the original\n"
    if next_action == "open":
        read_document(path)
    else:
        write_document(path, "saved\n", like=read_document(path, max_bytes=100))
    assert not temp.exists()
    assert unrelated.exists()  # only this file's own temporaries are touched
    assert path.read_bytes() == (b"the original\n" if next_action == "open" else b"saved\n")


def test_a_temporary_file_in_use_is_left_alone(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "doc.md", b"the original\n")
    busy = tmp_path / ".doc.md.89abcdef.tmp"
    fd = os.open(busy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what a save in progress holds
        read_document(path)
        assert busy.exists()
    finally:
        os.close(fd)
    read_document(path)
    assert not busy.exists()


# ------------------------------------------------------------------------------------------ encodings


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("# 日本語の文書\n\nこれは本文です。東京に住んでいます。\n", "shift_jis"),
        ("これは日本語の文書です。\n", "euc-jp"),
        ("这是一个中文文档。我住在北京。\n", "gb18030"),
        ("這是一個中文文件。我住在台北。\n", "big5"),
        ("\u201cQuoted\u201d \u2014 caf\u00e9 na\u00efve\n", "cp1252"),
    ],
)
def test_the_first_guess_is_the_encoding_that_fits(tmp_path: Path, text: str, encoding: str) -> None:
    path = write_bytes(tmp_path / "legacy.md", text.encode(encoding))
    with pytest.raises(EncodingProblem) as info:
        read_document(path)
    assert info.value.guesses[0] == encoding
    assert read_document(path, encoding=info.value.guesses[0]).text == text
