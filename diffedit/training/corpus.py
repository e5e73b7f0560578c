"""The demo model's corpus: Python 3.11's documentation (PSF licence), converted to Markdown prose.

Fetched from Debian's ``python3.11-doc`` (reST sources in ``/usr/share/doc/python3.11/html/_sources``),
converted with pandoc and a Lua filter, then filtered block by block for prose. Documents are split into
train and held-out sets by document (a deterministic hash of the source path), never by paragraph.

    python -m diffedit.training.corpus --out data/corpus
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SOURCES_DIR = Path("/usr/share/doc/python3.11/html/_sources")
DEBIAN_PACKAGES = ("python3.11-doc", "pandoc")
LUA_FILTER = Path(__file__).with_name("rst_to_md.lua")
# Directories whose pages are almost all API entries, grammar or changelogs rather than prose.
SKIP_DIRS = ("c-api", "whatsnew", "includes", "distutils")
SKIP_FILES = (
    "contents.rst.txt",
    "genindex.rst.txt",
    "license.rst.txt",
    "copyright.rst.txt",
    "glossary.rst.txt",
)
HELDOUT_PERCENT = 8
MAX_CODE_LINES = 14


@dataclass(frozen=True)
class Document:
    source: str
    text: str


def ensure_sources() -> None:
    """Install the Debian packages the corpus comes from, if they are missing (needs root and apt)."""
    if SOURCES_DIR.is_dir() and shutil.which("pandoc"):
        return
    subprocess.run(["apt-get", "update", "-q"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *DEBIAN_PACKAGES], check=True
    )


def source_files(root: Path = SOURCES_DIR) -> list[Path]:
    files = sorted(root.rglob("*.rst.txt"))
    return [f for f in files if f.parts[len(root.parts)] not in SKIP_DIRS and f.name not in SKIP_FILES]


def rst_to_markdown(path: Path) -> str:
    out = subprocess.run(
        ["pandoc", "-f", "rst", "-t", "gfm", "--wrap=none", "--lua-filter", str(LUA_FILTER), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout if out.returncode == 0 else ""


def split_blocks(markdown: str) -> list[str]:
    """Markdown blocks separated by blank lines; a fenced code block stays one block."""
    blocks: list[str] = []
    current: list[str] = []
    in_fence = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        if not line.strip() and not in_fence:
            if current:
                blocks.append("\n".join(current))
                current = []
            continue
        current.append(line.rstrip())
    if current:
        blocks.append("\n".join(current))
    return [b for b in (normalize_block(b) for b in blocks) if b]


def normalize_block(block: str) -> str:
    block = re.sub(r"^``` (\S+)", r"```\1", block)
    return "" if re.fullmatch(r"-{3,}|\*{3,}", block.strip()) else block


def block_kind(block: str) -> str:
    if block.startswith("```"):
        return "code"
    if block.startswith("#"):
        return "heading"
    if re.match(r"^(\s*[-*+]\s|\s*\d+\.\s)", block):
        return "list"
    if block.startswith((" ", "\t", "|", "<", "+-", "=")):
        return "other"
    return "paragraph"


def is_prose(text: str) -> bool:
    """Mostly words, not inline code, and not a bare fragment."""
    without_code = re.sub(r"`[^`]*`", "", text)
    letters = sum(c.isalpha() for c in without_code)
    words = len(re.findall(r"[A-Za-z]{2,}", without_code))
    return words >= 6 and letters >= 0.6 * len(text)


def keep_block(block: str) -> bool:
    kind = block_kind(block)
    if kind == "code":
        return block.endswith("```") and block.count("\n") - 1 <= MAX_CODE_LINES
    if kind == "heading":
        return len(block) <= 100 and "\n" not in block
    if kind in ("paragraph", "list"):
        return is_prose(block) and "|" not in block
    return False


def clean_document(markdown: str) -> str:
    """Filtered blocks joined by blank lines; code blocks only when they sit next to prose."""
    blocks = [b for b in split_blocks(markdown) if keep_block(b)]
    kept: list[str] = []
    for i, block in enumerate(blocks):
        if block_kind(block) == "code":
            before_prose = i > 0 and block_kind(blocks[i - 1]) in ("paragraph", "list")
            if not before_prose:
                continue
        kept.append(block)
    while kept and block_kind(kept[-1]) == "heading":
        kept.pop()
    return "\n\n".join(kept)


def prose_blocks(text: str) -> int:
    return sum(block_kind(b) in ("paragraph", "list") for b in split_blocks(text))


def is_heldout(source: str) -> bool:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return digest[0] * 100 // 256 < HELDOUT_PERCENT


def convert_all(root: Path = SOURCES_DIR, min_prose_blocks: int = 4) -> Iterator[Document]:
    for path in source_files(root):
        text = clean_document(rst_to_markdown(path))
        if prose_blocks(text) >= min_prose_blocks:
            yield Document(str(path.relative_to(root)), text)


def write_jsonl(path: Path, docs: list[Document]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"source": d.source, "text": d.text}, ensure_ascii=False) + "\n")


def read_documents(path: Path) -> list[Document]:
    with path.open(encoding="utf-8") as f:
        return [Document(**json.loads(line)) for line in f if line.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("data/corpus"))
    args = parser.parse_args(argv)
    ensure_sources()
    docs = list(convert_all())
    train = [d for d in docs if not is_heldout(d.source)]
    heldout = [d for d in docs if is_heldout(d.source)]
    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl(args.out / "train.jsonl", train)
    write_jsonl(args.out / "heldout.jsonl", heldout)
    chars = sum(len(d.text) for d in docs)
    print(f"{len(docs)} documents ({chars / 1e6:.1f}M chars): {len(train)} train, {len(heldout)} held out")


if __name__ == "__main__":
    main()
