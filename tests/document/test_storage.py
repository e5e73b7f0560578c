"""Reading and writing documents: round trips, bad input, and failed saves that leave the file intact."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from diffedit.document import storage
from diffedit.document.storage import (
    BinaryFile,
    DiskState,
    EncodingProblem,
    FileTooLarge,
    StorageError,
    check_unchanged,
    read_document,
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


def test_mixed_newlines_take_the_dominant_style(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "doc.md", b"a\r\nb\r\nc\nd\r\n")
    doc = read_document(path)
    assert doc.newline == "\r\n"
    assert doc.mixed_newlines
    write_document(path, doc.text, like=doc)
    assert path.read_bytes() == b"a\r\nb\r\nc\r\nd\r\n"


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
