"""Reading and writing documents without ever losing a word. Pure Python; no Qt.

``read_document`` decodes a file and remembers how it was stored (encoding, byte-order mark, line endings,
and a fingerprint of the bytes). ``write_document`` writes text back the same way, atomically: the bytes go
to a temporary file in the same folder, are flushed and fsync'ed, and only then replace the old file with
``os.replace``. Any failure before that replace leaves the old file byte-identical and raises a
``StorageError`` whose message names the file, the problem and the way out. ``check_unchanged`` tells a
caller whether the file changed on disk since it was read, so a save never silently overwrites it.
"""

from __future__ import annotations

import codecs
import contextlib
import enum
import errno
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
"""Files larger than this are refused: the editor is for prose, and a 50 MB file is almost surely not."""

SNIFF_BYTES = 8192
"""How much of a file the binary check looks at."""

FALLBACK_ENCODINGS = ("utf-8-sig", "utf-16", "cp1252", "latin-1")
"""Tried in this order when a file is not UTF-8; the ones that decode become the guesses offered."""

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
    """The file is not valid in the encoding tried; ``guesses`` are encodings that decode it, best first."""

    def __init__(self, path: str | os.PathLike[str], problem: str, remedy: str, guesses: list[str]):
        super().__init__(path, problem, remedy)
        self.guesses = guesses


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
    )


def _read_bytes(path: Path, max_bytes: int) -> tuple[bytes, os.stat_result]:
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
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
    guesses = guess_encodings(data)
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
    )


def guess_encodings(data: bytes) -> list[str]:
    """The fallback encodings that decode ``data`` without error, best first."""
    guesses = []
    for name in FALLBACK_ENCODINGS:
        if name == "utf-16" and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            continue  # without a BOM, almost any even-length byte string "decodes" as UTF-16
        try:
            data.decode(name)
        except UnicodeDecodeError:
            continue
        guesses.append(name)
    return guesses


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
    newline = like.newline if like else "\n"
    body = _to_lf(text)
    if newline != "\n":
        body = body.replace("\n", newline)
    try:
        data = body.encode(encoding)
    except UnicodeEncodeError as exc:
        line = body.count("\n", 0, exc.start) + 1 if newline != "\r" else body.count("\r", 0, exc.start) + 1
        char = body[exc.start]
        raise StorageError(
            path or (like.path if like else Path("document")),
            f"{char!r} (U+{ord(char):04X}) on line {line} cannot be written in {encoding.upper()}",
            "Remove that character, or use Save As with UTF-8. The file on disk was not changed",
        ) from None
    bom = _BOM_BY_ENCODING.get(encoding, b"") if like and like.bom else b""
    return bom + data


def write_document(
    path: str | os.PathLike[str], text: str, like: LoadedDocument | None = None
) -> LoadedDocument:
    """Write ``text`` atomically, stored like ``like`` (UTF-8 with LF newlines when None).

    The old file is replaced only once the new bytes are safely on disk; on any error it is left
    byte-identical and StorageError is raised. A symbolic link is followed: its target is replaced.
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
    if existing is not None and not _writable_file(target, existing):
        # os.replace would happily swap out a read-only file; respect the user's read-only flag instead.
        raise StorageError(
            path,
            "the file is read-only",
            "Use Save As to save a copy, or make the file writable",
            errno.EACCES,
        )
    mode = stat.S_IMODE(existing.st_mode) if existing is not None else 0o666 & ~_current_umask()
    try:
        atomic_write_bytes(target, data, mode=mode, owner=existing)
    except OSError as exc:
        raise _os_error(path, exc, action="save") from None
    st = os.stat(target)
    return LoadedDocument(
        path=path,
        text=_to_lf(text),
        encoding=like.encoding if like else "utf-8",
        bom=bool(like and like.bom),
        newline=like.newline if like else "\n",
        mtime_ns=st.st_mtime_ns,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def atomic_write_bytes(
    target: str | os.PathLike[str], data: bytes, *, mode: int = 0o600, owner: os.stat_result | None = None
) -> None:
    """Write ``data`` to ``target`` via a temporary file in the same folder, fsync, then ``os.replace``.

    Raises OSError; on failure the temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    folder = target.parent
    tmp = folder / f".{target.name}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
            if hasattr(os, "fchmod"):
                os.fchmod(fd, mode)
            if owner is not None and hasattr(os, "fchown"):
                with contextlib.suppress(OSError):  # only root may give a file away; keep ours then
                    os.fchown(fd, owner.st_uid, owner.st_gid)
        finally:
            os.close(fd)
        if not hasattr(os, "fchmod"):
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


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
