"""Reading and writing documents without ever losing a word. Pure Python; no Qt.

``read_document`` decodes a file and remembers how it was stored (encoding, byte-order mark, line endings,
and a fingerprint of the bytes). ``write_document`` writes text back the same way, atomically: the bytes go
to a temporary file in the same folder, are flushed and fsync'ed, and only then replace the old file with
``os.replace``. Any failure before that replace leaves the old file byte-identical and raises a
``StorageError`` whose message names the file, the problem and the way out. ``check_unchanged`` tells a
caller whether the file changed on disk since it was read, so a save never silently overwrites it; given
``expect``, ``write_document`` runs that same check right before the replace.

What the file had is kept: its encoding, BOM and each line's own ending (unedited text is written back byte
for byte), its owner, group, exact mode (setuid/setgid included) and extended attributes (POSIX ACLs are
one). ``save_caveats`` says beforehand what a save cannot keep (hard links, attributes it may not copy).
Temporary files of a save that was killed midway are removed at the next open or save of that file.
"""

from __future__ import annotations

import codecs
import contextlib
import enum
import errno
import hashlib
import os
import re
import secrets
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from diffedit.fileinfo import file_kind

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
"""Files larger than this are refused: the editor is for prose, and a 50 MB file is almost surely not."""

SNIFF_BYTES = 8192
"""How much of a file the binary check looks at."""

FALLBACK_ENCODINGS = ("utf-8-sig", "utf-16", "shift_jis", "euc-jp", "gb18030", "big5", "cp1252", "latin-1")
"""Tried when a file is not UTF-8; the ones that decode become the guesses offered, most plausible first."""

LIKELY_SCORE = 0.8
"""A guess this plausible (share of its non-ASCII characters that look like real text) is named as likely."""

_BOMS: tuple[tuple[bytes, str], ...] = (
    # UTF-32 first: its little-endian BOM starts with the UTF-16 one.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_BOM_BY_ENCODING = {name: bom for bom, name in _BOMS}
# Characters that do not occur in text: C0 controls other than tab, newline, form feed, carriage return
# and escape (ANSI colours in logs), plus DEL.
_CONTROL = frozenset(range(0x00, 0x20)) - {0x09, 0x0A, 0x0C, 0x0D, 0x1B} | {0x7F}
_NEWLINES = ("\n", "\r\n", "\r")
_NEWLINE_RE = re.compile(r"\r\n|\r|\n")  # the same split as _to_lf: CRLF first, then lone CR or LF
_TEMP_SUFFIX = ".tmp"
STALE_TEMP_SECONDS = 3600
"""Where files cannot be locked, a save's temporary file this old is taken as left by a killed save."""


class StorageError(Exception):
    """A read or write failed; ``str(error)`` is one line naming the file, the problem and the way out."""

    def __init__(self, path: str | os.PathLike[str], problem: str, remedy: str, errno_: int | None = None):
        self.path = Path(path)
        self.problem = problem
        self.remedy = remedy
        self.errno = errno_
        end = "" if remedy.endswith(".") else "."
        super().__init__(f"{self.path}: {problem}. {remedy}{end}")


class EncodingProblem(StorageError):
    """The file is not valid in the encoding tried; ``guesses`` are encodings that decode it, best first.

    ``likely`` is the first guess when it is plausible enough to suggest on its own, else None.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        problem: str,
        remedy: str,
        guesses: list[str],
        likely: str | None = None,
    ):
        super().__init__(path, problem, remedy)
        self.guesses = guesses
        self.likely = likely


class BinaryFile(StorageError):
    """The file holds binary data (NUL bytes, control characters), not text."""


class FileTooLarge(StorageError):
    """The file is over the size limit; it is refused rather than opened partly."""

    def __init__(self, path: str | os.PathLike[str], size: int, limit: int):
        super().__init__(
            path,
            f"the file is {_megabytes(size)}, over the {_megabytes(limit)} limit for documents",
            "Open it in another program, or split it into smaller documents",
        )
        self.size = size
        self.limit = limit


class DiskState(enum.Enum):
    UNCHANGED = "unchanged"
    MODIFIED = "modified"
    DELETED = "deleted"


class FileChangedOnDisk(StorageError):
    """A save with ``expect`` found the file changed (or deleted) since it was read; nothing was written."""

    def __init__(self, path: str | os.PathLike[str], state: DiskState):
        how = "deleted" if state is DiskState.DELETED else "changed on disk"
        super().__init__(
            path,
            f"not saved: the file was {how} since it was read (by another program?)",
            "Nothing was written; reload it to see the other change, or save under another name",
        )
        self.state = state


@dataclass(frozen=True)
class LoadedDocument:
    """A document as read from (or just written to) disk, with everything needed to write it back alike.

    ``text`` always uses "\\n" newlines; ``newline`` is the file's dominant style and is used on save.
    ``encoding`` is a codec name without BOM handling ("utf-8", "utf-16-le", "cp1252"...); ``bom`` says
    whether the file starts with a byte-order mark. ``lossy`` marks text decoded with replacement
    characters: such a document must not be saved back over its file.
    """

    path: Path
    text: str
    encoding: str = "utf-8"
    bom: bool = False
    newline: str = "\n"
    mtime_ns: int = 0
    size: int = 0
    sha256: str = ""
    lossy: bool = False
    mixed_newlines: bool = field(default=False, compare=False)
    line_endings: tuple[str, ...] | None = field(default=None, compare=False, repr=False)
    """Each line's own ending, in order, when the file mixes styles (None: every line ends in ``newline``)."""

    @property
    def display_encoding(self) -> str:
        return self.encoding.upper() + (" with BOM" if self.bom else "")


# ---------------------------------------------------------------------------------------------- reading


def read_document(
    path: str | os.PathLike[str],
    encoding: str | None = None,
    *,
    errors: str = "strict",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> LoadedDocument:
    """Read a text file; ``encoding=None`` means: the BOM's encoding if there is one, else UTF-8.

    ``errors="replace"`` decodes whatever is there (for a read-only look) and marks the result ``lossy``.
    Raises FileTooLarge, BinaryFile, EncodingProblem, or StorageError for a missing or unreadable file.
    """
    path = Path(path)
    data, st = _read_bytes(path, max_bytes)
    remove_stale_temporaries(path)
    bom_encoding, bom = _detect_bom(data)
    if encoding is not None:
        wanted = _codec_name(path, encoding)
        # An explicit "utf-8" or "utf-16" still honours a matching BOM rather than decoding it as text.
        if bom_encoding is not None and _same_family(wanted, bom_encoding):
            codec, body = bom_encoding, data[len(bom) :]
        else:
            codec, body, bom = wanted, data, b""
    elif bom_encoding is not None:
        codec, body = bom_encoding, data[len(bom) :]
    else:
        codec, body = "utf-8", data
        if b"\x00" in data[:SNIFF_BYTES]:
            raise BinaryFile(
                path,
                "this looks like a binary file (it contains NUL bytes), not text",
                "Open a Markdown or plain-text file instead",
            )
    try:
        text = body.decode(codec, errors=errors)
    except UnicodeDecodeError as exc:
        raise _decode_failure(path, data, codec, exc, explicit=encoding is not None) from None
    except LookupError:  # an error handler name we do not know
        raise StorageError(path, f"unknown decoding mode {errors!r}", "Use 'strict' or 'replace'") from None
    if encoding is None and _looks_binary(text[:SNIFF_BYTES]):
        raise BinaryFile(
            path,
            "this looks like a binary file (it is full of control characters), not text",
            "Open a Markdown or plain-text file instead",
        )
    newline, mixed = _dominant_newline(text)
    return LoadedDocument(
        path=path,
        text=_to_lf(text),
        encoding=codec,
        bom=bool(bom),
        newline=newline,
        mtime_ns=st.st_mtime_ns,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        lossy=errors != "strict" and "\ufffd" in text,
        mixed_newlines=mixed,
        line_endings=tuple(_NEWLINE_RE.findall(text)) if mixed else None,
    )


def _refuse_special(path: Path, st: os.stat_result) -> None:
    """A FIFO would block the open, a device would read forever: refuse anything but files and folders."""
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise StorageError(
            path,
            f"it is {file_kind(st.st_mode)}, not a regular file",
            "Choose a regular text file instead",
        )


def _read_bytes(path: Path, max_bytes: int) -> tuple[bytes, os.stat_result]:
    try:
        st = os.stat(path)
        _refuse_special(path, st)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory")
        # Non-blocking, so that a FIFO swapped in after the stat cannot hang the open; fstat checks again.
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
        fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
        with open(fd, "rb") as f:
            st = os.fstat(f.fileno())
            _refuse_special(path, st)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, "Is a directory")
            if st.st_size > max_bytes:
                raise FileTooLarge(path, st.st_size, max_bytes)
            data = f.read(max_bytes + 1)  # the file may have grown since the fstat
    except OSError as exc:
        raise _os_error(path, exc, action="open") from None
    if len(data) > max_bytes:
        raise FileTooLarge(path, len(data), max_bytes)
    return data, st


def _detect_bom(data: bytes) -> tuple[str | None, bytes]:
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name, bom
    return None, b""


def _codec_name(path: Path, encoding: str) -> str:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise StorageError(
            path, f"{encoding!r} is not an encoding this editor knows", "Pick another encoding, e.g. UTF-8"
        ) from None
    # Python reports "utf-8-sig" as such; its BOM is handled here, so decode the body as plain UTF-8.
    return "utf-8" if name == "utf-8-sig" else name


def _same_family(wanted: str, bom_encoding: str) -> bool:
    family = {"utf-8": "utf-8", "utf-16": "utf-16", "utf-16-le": "utf-16", "utf-16-be": "utf-16"}
    family |= {"utf-32": "utf-32", "utf-32-le": "utf-32", "utf-32-be": "utf-32"}
    return family.get(wanted, wanted) == family.get(bom_encoding, bom_encoding)


def _looks_binary(text: str) -> bool:
    if not text:
        return False
    controls = sum(1 for ch in text if ord(ch) in _CONTROL)
    return controls > max(2, len(text) // 100)


def _decode_failure(
    path: Path, data: bytes, codec: str, exc: UnicodeDecodeError, *, explicit: bool
) -> StorageError:
    line = data.count(b"\n", 0, exc.start) + 1
    bad = data[exc.start : exc.start + 1].hex()
    ranked = rank_encodings(data)
    guesses = [name for name, _score in ranked]
    if not explicit and not guesses:
        return BinaryFile(path, "this file is not text in any encoding tried", "Open a text file instead")
    if not explicit and _looks_binary(data[:SNIFF_BYTES].decode("latin-1")):
        return BinaryFile(
            path,
            "this looks like a binary file (it is full of control characters), not text",
            "Open a Markdown or plain-text file instead",
        )
    shown = ", ".join(guesses[:3]) if guesses else "none found"
    return EncodingProblem(
        path,
        f"byte 0x{bad} on line {line} is not valid {codec.upper()}",
        f"Open it as another encoding ({shown}) or read-only",
        guesses,
        likely=ranked[0][0] if ranked and ranked[0][1] >= LIKELY_SCORE else None,
    )


def guess_encodings(data: bytes) -> list[str]:
    """The fallback encodings that decode ``data`` without error, most plausible first."""
    return [name for name, _score in rank_encodings(data)]


def rank_encodings(data: bytes) -> list[tuple[str, float]]:
    """Each fallback encoding that decodes ``data``, with how plausible the text it gives is (0..1).

    Sorted by plausibility; ties keep FALLBACK_ENCODINGS' order. Many byte strings decode without error
    in several legacy encodings (any byte string does in latin-1), so decoding cleanly is not enough.
    """
    ranked = []
    for name in FALLBACK_ENCODINGS:
        if name == "utf-16" and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            continue  # without a BOM, almost any even-length byte string "decodes" as UTF-16
        try:
            text = data.decode(name)
        except UnicodeDecodeError:
            continue
        ranked.append((name, 1.0 if name.startswith("utf") else _plausibility(text, name)))
    order = {name: i for i, name in enumerate(FALLBACK_ENCODINGS)}
    return sorted(ranked, key=lambda item: (-item[1], order[item[0]]))


_JAPANESE = ("shift_jis", "euc-jp")
_CHINESE = ("gb18030", "big5")


def _is_kana(c: int) -> bool:
    return 0x3040 <= c <= 0x30FF


def _is_han_text(c: int) -> bool:
    # CJK ideographs (and extension A), CJK punctuation, full-width forms (not half-width katakana).
    return 0x4E00 <= c <= 0x9FFF or 0x3400 <= c <= 0x4DBF or 0x3000 <= c <= 0x303F or 0xFF01 <= c <= 0xFF60


def _plausibility(text: str, encoding: str) -> float:
    """The share of ``text``'s non-ASCII characters that look like real text written in ``encoding``.

    CJK text comes in runs of its script (a lone ideograph between ASCII letters is a mis-decoded pair
    of Western bytes), Japanese has kana and Chinese has none; Western text has letters from U+00A0 up
    (not the C1 controls latin-1 gives for 0x80-0x9F) and rarely three non-ASCII characters in a row.
    """
    wide = [i for i, ch in enumerate(text) if ord(ch) > 0x7F]
    if not wide:
        return 1.0
    codes = [ord(ch) for ch in text]
    wide_set = set(wide)
    good = 0
    for i in wide:
        c = codes[i]
        if encoding in _JAPANESE or encoding in _CHINESE:
            fits = _is_han_text(c) or (encoding in _JAPANESE and _is_kana(c))
            fits = fits and (i - 1 in wide_set or i + 1 in wide_set)
        else:
            run = (i - 1 in wide_set and i - 2 in wide_set) or (i + 1 in wide_set and i + 2 in wide_set)
            run = run or (i - 1 in wide_set and i + 1 in wide_set)
            fits = c >= 0xA0 and not run
        good += fits
    score = good / len(wide)
    has_kana = any(_is_kana(codes[i]) for i in wide)
    if (encoding in _JAPANESE and not has_kana) or (encoding in _CHINESE and has_kana):
        score /= 2
    return score


def _dominant_newline(text: str) -> tuple[str, bool]:
    crlf = text.count("\r\n")
    cr = text.count("\r") - crlf
    lf = text.count("\n") - crlf
    counts = {"\n": lf, "\r\n": crlf, "\r": cr}
    # Ties (and files without any newline) go to "\n", the first in _NEWLINES.
    best = max(_NEWLINES, key=lambda nl: counts[nl])
    mixed = sum(1 for n in counts.values() if n) > 1
    return best, mixed


def _to_lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


# ---------------------------------------------------------------------------------------------- writing


def encode_document(text: str, like: LoadedDocument | None = None, path: Path | None = None) -> bytes:
    """The bytes ``write_document`` would write: ``like``'s encoding, BOM and newlines (UTF-8, LF if None)."""
    encoding = like.encoding if like else "utf-8"
    body = _with_newlines(_to_lf(text), like)
    try:
        data = body.encode(encoding)
    except UnicodeEncodeError as exc:
        line = _to_lf(body[: exc.start]).count("\n") + 1
        char = body[exc.start]
        raise StorageError(
            path or (like.path if like else Path("document")),
            f"{char!r} (U+{ord(char):04X}) on line {line} cannot be written in {encoding.upper()}",
            "Remove that character, or use Save As with UTF-8. The file on disk was not changed",
        ) from None
    bom = _BOM_BY_ENCODING.get(encoding, b"") if like and like.bom else b""
    return bom + data


def _with_newlines(text: str, like: LoadedDocument | None) -> str:
    """``text`` (LF newlines) with the file's line endings: its style, or each line's own in a mixed file.

    In a mixed file the lines before the first edit and after the last keep their own endings and the
    edited lines take the dominant style, so unedited text is written back byte for byte.
    """
    newline = like.newline if like else "\n"
    endings = like.line_endings if like else None
    if like is None or not endings:
        return text if newline == "\n" else text.replace("\n", newline)
    new, old = text.split("\n"), like.text.split("\n")
    n, m = len(new) - 1, len(old) - 1  # newlines in each; ending i follows line i
    out = [newline] * n
    p = 0
    while p < n and p < m and new[p] == old[p]:
        out[p] = endings[p]
        p += 1
    k = 0
    while k < n - p and k < m - p and new[n - k] == old[m - k]:
        out[n - k - 1] = endings[m - k - 1]
        k += 1
    return "".join(line + end for line, end in zip(new, [*out, ""], strict=True))


def write_document(
    path: str | os.PathLike[str],
    text: str,
    like: LoadedDocument | None = None,
    *,
    expect: LoadedDocument | None = None,
) -> LoadedDocument:
    """Write ``text`` atomically, stored like ``like`` (UTF-8 with LF newlines when None).

    The old file is replaced only once the new bytes are safely on disk; on any error it is left
    byte-identical and StorageError is raised. A symbolic link is followed: its target is replaced.
    With ``expect``, the file must still hold the bytes ``expect`` was read from right before the replace
    (``check_unchanged``); else FileChangedOnDisk is raised and nothing is written.
    """
    path = Path(path)
    if like is not None and like.lossy and _same_file(path, like.path):
        raise StorageError(
            path,
            "this file was opened read-only because its encoding could not be read exactly",
            "Use Save As to save a copy, or reopen it with the right encoding",
        )
    data = encode_document(text, like, path)
    target = Path(os.path.realpath(path))
    try:
        existing = os.stat(target)
    except FileNotFoundError:
        existing = None
    except OSError as exc:
        raise _os_error(path, exc, action="save") from None
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise _os_error(path, IsADirectoryError(errno.EISDIR, "Is a directory"), action="save")
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        raise StorageError(
            path,
            f"could not save: it is {file_kind(existing.st_mode)}, not a regular file",
            "Use Save As to save your text to a regular file",
        )
    if existing is not None and not _writable_file(target, existing):
        # os.replace would happily swap out a read-only file; respect the user's read-only flag instead.
        raise StorageError(
            path,
            "the file is read-only",
            "Use Save As to save a copy, or make the file writable",
            errno.EACCES,
        )
    if expect is not None and existing is None:
        raise FileChangedOnDisk(path, DiskState.DELETED)
    mode = stat.S_IMODE(existing.st_mode) if existing is not None else 0o666 & ~_current_umask()

    def still_as_read() -> None:
        assert expect is not None
        state = check_unchanged(target, expect)
        if state is not DiskState.UNCHANGED:
            raise FileChangedOnDisk(path, state)

    remove_stale_temporaries(target)
    try:
        atomic_write_bytes(
            target,
            data,
            mode=mode,
            keep_from=target if existing is not None else None,
            before_replace=still_as_read if expect is not None else None,
        )
    except OSError as exc:
        raise _os_error(path, exc, action="save") from None
    st = os.stat(target)
    body = data.decode(like.encoding) if like is not None and like.line_endings else ""
    return LoadedDocument(
        path=path,
        text=_to_lf(text),
        encoding=like.encoding if like else "utf-8",
        bom=bool(like and like.bom),
        newline=like.newline if like else "\n",
        mtime_ns=st.st_mtime_ns,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        mixed_newlines=bool(like and like.mixed_newlines),
        line_endings=tuple(_NEWLINE_RE.findall(body)) if body else None,
    )


def atomic_write_bytes(
    target: str | os.PathLike[str],
    data: bytes,
    *,
    mode: int = 0o600,
    keep_from: str | os.PathLike[str] | None = None,
    before_replace: Callable[[], None] | None = None,
) -> list[str]:
    """Write ``data`` to ``target`` via a temporary file in the same folder, fsync, then ``os.replace``.

    ``keep_from`` (the file being replaced) gives the new file its owner, group, extended attributes and
    ACLs; ``mode`` is set last and exactly. ``before_replace`` runs at the last moment and may raise to
    abort. Returns what could not be kept (as ``save_caveats`` words it). Raises OSError (or what
    ``before_replace`` raised); on failure the temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    folder = target.parent
    tmp, fd = _create_temporary(target)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        problems = _copy_metadata(fd, Path(keep_from) if keep_from is not None else None, mode)
        os.fsync(fd)
        if os.name == "nt":  # Windows cannot rename an open file (and has no lock to keep)
            os.close(fd)
            fd = -1
            os.chmod(tmp, mode)
        if before_replace is not None:
            before_replace()
        os.replace(tmp, target)  # still open and locked: no cleanup can take it for a killed save's
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        if fd >= 0:
            os.close(fd)
    _fsync_folder(folder)
    return problems


def _create_temporary(target: Path) -> tuple[Path, int]:
    """A new ``.NAME.XXXXXXXX.tmp`` beside ``target`` (same file system: the replace stays atomic), locked
    for as long as it is open so that ``remove_stale_temporaries`` can tell a live save from a killed one."""
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}{_TEMP_SUFFIX}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    _lock(fd)
    return tmp, fd


def _lock(fd: int) -> bool | None:
    """An exclusive, non-blocking lock: True if taken, False if held elsewhere, None where unsupported."""
    try:
        import fcntl
    except ImportError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return None
    return True


def _copy_metadata(fd: int, source: Path | None, mode: int) -> list[str]:
    """Give the open file ``fd`` what ``source`` has (owner, group, extended attributes), then ``mode``.

    The order matters: ``chown`` clears setuid/setgid, so it comes before ``chmod``; an ACL xattr sets the
    group bits to its mask, which the final ``chmod`` sets back to the original's (the same mask).
    Returns, in words, each property that could not be kept.
    """
    problems: list[str] = []
    if source is not None:
        st = os.stat(source)
        mine = os.fstat(fd)
        if (mine.st_uid, mine.st_gid) != (st.st_uid, st.st_gid) and hasattr(os, "fchown"):
            try:
                os.fchown(fd, st.st_uid, st.st_gid)
            except OSError:
                # Only root may give a file away; keeping the group alone is allowed to its members.
                try:
                    os.fchown(fd, -1, st.st_gid)
                except OSError:
                    problems.append(f"its owner and group (user {st.st_uid}, group {st.st_gid})")
                else:
                    if mine.st_uid != st.st_uid:
                        problems.append(f"its owner (user {st.st_uid}; the saved file will be yours)")
        problems += _copy_xattrs(fd, source)
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)
        kept = stat.S_IMODE(os.fstat(fd).st_mode)
        lost = mode & ~kept & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX)
        if lost:
            names = [n for bit, n in ((stat.S_ISUID, "setuid"), (stat.S_ISGID, "setgid")) if lost & bit]
            problems.append(f"its {' and '.join(names) or 'sticky'} bit")
    return problems


def _copy_xattrs(fd: int, source: Path) -> list[str]:
    if not hasattr(os, "listxattr"):
        return []
    try:
        names = os.listxattr(source)
    except OSError:
        return []  # the file system has none
    problems = []
    for name in names:
        try:
            os.setxattr(fd, name, os.getxattr(source, name))
        except OSError as exc:
            problems.append(f"its extended attribute {name} ({exc.strerror or exc})")
    return problems


def save_caveats(path: str | os.PathLike[str]) -> list[str]:
    """What saving ``path`` cannot keep, one sentence each, to show before saving ([] when nothing).

    The save replaces the file (that is what makes it atomic), so hard links keep the old text; and the
    owner, some extended attributes or the setuid/setgid bits may be beyond this user's rights. The
    latter are found by trying them on a temporary file beside it, exactly as the save will.
    """
    path = Path(path)
    target = Path(os.path.realpath(path))
    try:
        st = os.stat(target)
    except OSError:
        return []  # a new file keeps nothing; a save error says what is wrong
    if not stat.S_ISREG(st.st_mode):
        return []
    caveats = []
    if st.st_nlink > 1:
        others = st.st_nlink - 1
        caveats.append(
            f"{path.name} has {others} other hard link{'s' if others > 1 else ''}: saving replaces the file, "
            "so the other names keep the old text"
        )
    try:
        tmp, fd = _create_temporary(target)
    except OSError:
        return caveats  # the folder is not writable: the save itself will say so
    try:
        problems = _copy_metadata(fd, target, stat.S_IMODE(st.st_mode))
    except OSError:
        problems = []
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    caveats += [f"saving {path.name} cannot keep {problem}" for problem in problems]
    return caveats


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files a killed save of ``path`` left beside it; returns those removed.

    Only this file's own (``.NAME.XXXXXXXX.tmp``, ours, regular files), and only those no save holds: a
    save keeps its temporary file locked until it is renamed, and the kernel drops the lock of a killed
    process. Where locks are unsupported, only files older than STALE_TEMP_SECONDS go.
    """
    target = Path(os.path.realpath(path))
    pattern = re.compile(rf"\.{re.escape(target.name)}\.[0-9a-f]{{8}}{re.escape(_TEMP_SUFFIX)}")
    removed = []
    try:
        names = [n for n in os.listdir(target.parent) if pattern.fullmatch(n)]
    except OSError:
        return []
    for name in names:
        tmp = target.parent / name
        try:
            st = os.lstat(tmp)
            if not stat.S_ISREG(st.st_mode) or (hasattr(os, "geteuid") and st.st_uid != os.geteuid()):
                continue
            fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            continue
        try:
            locked = _lock(fd)
            stale = locked is True or (locked is None and time.time() - st.st_mtime > STALE_TEMP_SECONDS)
            if stale:
                os.unlink(tmp)  # while holding the lock, so no save can be using it
                removed.append(tmp)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable; not every platform or file system can open a folder for this."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _current_umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


# ---------------------------------------------------------------------------------------------- checking


def check_unchanged(path: str | os.PathLike[str], loaded: LoadedDocument) -> DiskState:
    """Whether the file still holds the bytes ``loaded`` was read from (or written as).

    Compares contents, not only timestamps: a file touched without a change is UNCHANGED, and a change
    within the file system's timestamp granularity is still seen.
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return DiskState.DELETED
    except OSError:
        return DiskState.MODIFIED  # cannot tell: the caller must ask before overwriting
    if not stat.S_ISREG(st.st_mode):
        return DiskState.DELETED
    if st.st_size != loaded.size:
        return DiskState.MODIFIED
    try:
        digest = _sha256_file(path)
    except FileNotFoundError:
        return DiskState.DELETED
    except OSError:
        return DiskState.MODIFIED
    return DiskState.UNCHANGED if digest == loaded.sha256 else DiskState.MODIFIED


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_is_writable(path: str | os.PathLike[str]) -> bool:
    """Whether a save to ``path`` could succeed as far as permissions go (the file, or else its folder)."""
    target = Path(os.path.realpath(path))
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return os.access(target.parent, os.W_OK | os.X_OK)
    except OSError:
        return False
    return _writable_file(target, st) and os.access(target.parent, os.W_OK | os.X_OK)


def _writable_file(path: Path, st: os.stat_result) -> bool:
    # The mode bits count too: root may write anything, but a file without write bits was made read-only
    # on purpose, and a save should not quietly undo that.
    return os.access(path, os.W_OK) and bool(st.st_mode & 0o222)


# ---------------------------------------------------------------------------------------------- messages

_REMEDY_SAVE = "Your text is still in the editor; use Save As to save it somewhere else"


def _os_error(path: Path, exc: OSError, *, action: str) -> StorageError:
    """Turn an OSError into a one-line StorageError that says what to do about it."""
    code = exc.errno
    saving = action == "save"
    unchanged = " The file on disk was not changed." if saving else ""
    remedy = _REMEDY_SAVE if saving else "Check the path and try again"
    if code == errno.ENOENT:
        if saving:
            problem = "the folder does not exist (was it moved, deleted or unmounted?)"
        else:
            problem = "the file does not exist"
            remedy = "It may have been moved or deleted; choose it again with File > Open"
    elif code in (errno.EACCES, errno.EPERM):
        problem = "permission denied" + (" (the folder may be read-only)" if saving else "")
        remedy = _REMEDY_SAVE if saving else "Check the file's permissions, or copy it somewhere you can read"
    elif code == errno.EROFS:
        problem = "the disk is read-only"
    elif code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        problem = "the disk is full"
        remedy = "Free some space and save again, or use Save As to save on another disk"
    elif code == errno.EISDIR:
        problem = "that is a folder, not a file"
        remedy = "Choose a file name" if saving else "Choose a file inside it"
    elif code == errno.ENAMETOOLONG:
        problem = "the file name is too long"
        remedy = "Choose a shorter name"
    elif code == errno.EIO:
        problem = "the disk reported an input/output error"
        remedy = (_REMEDY_SAVE if saving else "Copy the file elsewhere") + "; the disk may be failing"
    else:
        problem = exc.strerror or str(exc) or type(exc).__name__
    return StorageError(path, f"could not {action}: {problem}", remedy + "." + unchanged, code)


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"
