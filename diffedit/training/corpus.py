"""The demo model's corpus: openly licensed prose from Debian packages, converted to Markdown blocks.

Sources (:mod:`diffedit.training.sources`): the Python 3.11 documentation, the Debian Administrator's
Handbook, the Debian Reference, Perl's manuals, git's manuals, the Bash reference and GNU coding standards,
and WordNet's glosses, each from its Debian package (main, DFSG-free; the licence of each is recorded in
``sources.json``). Each document is converted with pandoc (or pod2markdown) and filtered block by block for
prose paragraphs, list items, headings and short code blocks that follow prose, then deduplicated
paragraph by paragraph (exact after normalisation, and near duplicates by MinHash,
:mod:`diffedit.training.dedup`).

Three splits, all by whole document, never by paragraph:

* ``train.jsonl``: what the tokenizer and the model see;
* ``heldout.jsonl``: documents of the training sources held out by a hash of their source path;
* ``heldout_source.jsonl``: every document of the sources in ``HELDOUT_SOURCES`` (text not from the
  training corpus at all: the dictionary-word evaluation reads it).

    python -m diffedit.training.corpus --out data/corpus                # every source
    python -m diffedit.training.corpus --out data/corpus --sources python   # the first demo's corpus
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diffedit.training import sources as src
from diffedit.training.dedup import Deduplicator
from diffedit.training.niceness import nice_to

HELDOUT_PERCENT = 8
MAX_CODE_LINES = 14


@dataclass(frozen=True)
class Document:
    source: str
    text: str
    origin: str = src.PYTHON  # the name of the Source it comes from


TOOLS = {"pandoc": "pandoc", "pod2markdown": "libpod-markdown-perl"}


def package_status(package: str) -> tuple[str, str] | None:
    """(version, section) of an installed Debian package, None where it is not installed."""
    if not shutil.which("dpkg-query"):
        return None
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Status}\t${Version}\t${Section}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    parts = out.stdout.split("\t")
    if out.returncode != 0 or len(parts) != 3 or parts[0] != "installed":
        return None
    return parts[1], parts[2]


def ensure_sources(chosen: Sequence[src.Source] = src.SOURCES) -> None:
    """Install the Debian packages the corpus comes from, if they are missing (needs root and apt)."""
    wanted = [p for s in chosen for p in s.packages] + list(TOOLS.values())
    missing = [p for p in dict.fromkeys(wanted) if package_status(p) is None]
    if not missing:
        return
    print(f"installing {' '.join(missing)} with apt-get", flush=True)
    subprocess.run(["apt-get", "update", "-q"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], check=True)


def check_free(chosen: Sequence[src.Source]) -> dict[str, str]:
    """The installed version of each source's package; refuses one outside Debian main (non-free, contrib)."""
    versions: dict[str, str] = {}
    for s in chosen:
        status = package_status(s.packages[0])
        if status is None:
            raise SystemExit(
                f"{s.packages[0]} is not installed: run `apt-get install {s.packages[0]}` (root)"
            )
        version, section = status
        if "/" in section:  # main has no area prefix; non-free/doc, contrib/text ... do
            raise SystemExit(
                f"{s.packages[0]} is in {section.split('/')[0]}, not main: not DFSG-free, left out"
            )
        versions[s.name] = version
    return versions


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
    return "\n\n".join(drop_empty_sections(kept))


def heading_level(block: str) -> int:
    return len(block) - len(block.lstrip("#"))


def drop_empty_sections(blocks: list[str]) -> list[str]:
    """Headings directly followed by a heading of the same or a higher level (a section whose content was
    all filtered out, like POD's ``# NAME``) are dropped."""
    out: list[str] = []
    for i, block in enumerate(blocks):
        nxt = blocks[i + 1] if i + 1 < len(blocks) else None
        if (
            block_kind(block) == "heading"
            and nxt is not None
            and block_kind(nxt) == "heading"
            and heading_level(nxt) <= heading_level(block)
        ):
            continue
        out.append(block)
    return out


def prose_blocks(text: str) -> int:
    return sum(block_kind(b) in ("paragraph", "list") for b in split_blocks(text))


def is_heldout(source: str) -> bool:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return digest[0] * 100 // 256 < HELDOUT_PERCENT


def convert_all(
    chosen: Sequence[src.Source] = (src.SOURCES[0],), min_prose_blocks: int = 4, log: bool = False
) -> Iterator[Document]:
    """Every document of the chosen sources, converted and filtered (not yet deduplicated)."""
    for s in chosen:
        count = 0
        for name, markdown in src.convert(s):
            text = clean_document(markdown)
            if prose_blocks(text) >= min_prose_blocks:
                count += 1
                yield Document(name, text, s.name)
        if log:
            print(f"  {s.name}: {count} documents converted", flush=True)


def split_of(doc: Document, heldout_sources: Iterable[str]) -> str:
    """``heldout_source`` for a held-out source's document, else ``heldout`` or ``train`` by document."""
    if doc.origin in set(heldout_sources):
        return "heldout_source"
    return "heldout" if is_heldout(doc.source) else "train"


SPLITS = ("train", "heldout", "heldout_source")
# Deduplication order: the first occurrence of a paragraph is kept, so held-out text stays whole and a
# training paragraph repeating a held-out one is what goes.
DEDUP_ORDER = ("heldout_source", "heldout", "train")


def deduplicate(
    docs: Sequence[Document], heldout_sources: Iterable[str], min_prose_blocks: int = 4
) -> tuple[dict[str, list[Document]], Deduplicator]:
    """The documents by split, each stripped of paragraphs, list items and code blocks already seen
    (exactly or nearly); headings are structure and never count as duplicates. A document left with
    fewer than ``min_prose_blocks`` prose blocks is dropped."""
    held = tuple(heldout_sources)
    by_split: dict[str, list[Document]] = {k: [] for k in SPLITS}
    for d in docs:
        by_split[split_of(d, held)].append(d)
    dedup = Deduplicator()
    out: dict[str, list[Document]] = {k: [] for k in SPLITS}
    for split in DEDUP_ORDER:
        for d in sorted(by_split[split], key=lambda doc: (doc.origin, doc.source)):
            blocks = [b for b in split_blocks(d.text) if block_kind(b) == "heading" or dedup.is_new(b)]
            text = clean_document("\n\n".join(blocks))
            if prose_blocks(text) >= min_prose_blocks:
                out[split].append(Document(d.source, text, d.origin))
    for split in SPLITS:
        out[split].sort(key=lambda doc: (doc.origin, doc.source))
    return out, dedup


def source_table(
    chosen: Sequence[src.Source], versions: dict[str, str], splits: dict[str, list[Document]]
) -> list[dict[str, Any]]:
    """Per source: package, version, licence, register and what each split holds (for the model card)."""
    rows = []
    for s in chosen:
        row: dict[str, Any] = {
            "source": s.name,
            "packages": list(s.packages),
            "version": versions.get(s.name, "?"),
            "licence": s.licence,
            "register": s.register,
            "copyright_file": f"/usr/share/doc/{s.packages[0]}/copyright",
        }
        for split, docs in splits.items():
            mine = [d for d in docs if d.origin == s.name]
            row[split] = {
                "documents": len(mine),
                "blocks": sum(len(split_blocks(d.text)) for d in mine),
                "chars": sum(len(d.text) for d in mine),
            }
        rows.append(row)
    return rows


def write_jsonl(path: Path, docs: list[Document]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for d in docs:
            row = {"source": d.source, "origin": d.origin, "text": d.text}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_documents(path: Path, missing_ok: bool = False) -> list[Document]:
    """The documents of one split file; with ``missing_ok`` a missing file (an older corpus without that
    split) reads as none."""
    if missing_ok and not path.is_file():
        return []
    with path.open(encoding="utf-8") as f:
        return [Document(**json.loads(line)) for line in f if line.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("data/corpus"))
    parser.add_argument(
        "--sources", nargs="*", default=None, help=f"default: all ({', '.join(s.name for s in src.SOURCES)})"
    )
    parser.add_argument(
        "--heldout-sources",
        nargs="*",
        default=list(src.HELDOUT_SOURCES),
        help="sources held out whole (default: %(default)s)",
    )
    parser.add_argument("--nice", type=int, default=10, help="lower this process's priority (default 10)")
    args = parser.parse_args(argv)
    nice_to(args.nice)
    chosen = src.by_name(args.sources)
    ensure_sources(chosen)
    versions = check_free(chosen)
    print(f"converting {len(chosen)} source(s)", flush=True)
    docs = list(convert_all(chosen, log=True))
    splits, dedup = deduplicate(docs, args.heldout_sources)
    args.out.mkdir(parents=True, exist_ok=True)
    for split, split_docs in splits.items():
        write_jsonl(args.out / f"{split}.jsonl", split_docs)
    table = source_table(chosen, versions, splits)
    summary = {
        "sources": table,
        "heldout_sources": [s for s in args.heldout_sources if s in {c.name for c in chosen}],
        "heldout_percent": HELDOUT_PERCENT,
        "duplicates_dropped": {"exact": dedup.dropped_exact, "near": dedup.dropped_near},
        "near_duplicate_examples": [{"dropped": a, "kept": b} for a, b in dedup.near_examples],
        "pandoc": pandoc_version(),
    }
    (args.out / "sources.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"{'source':<18} {'version':<28} {'train docs':>10} {'chars':>10} {'held docs':>9} {'held-src':>8}")
    for row in table:
        print(
            f"{row['source']:<18} {row['version']:<28} {row['train']['documents']:>10} "
            f"{row['train']['chars']:>10,} {row['heldout']['documents']:>9} "
            f"{row['heldout_source']['documents']:>8}"
        )
    counts = ", ".join(f"{len(v)} {k}" for k, v in splits.items())
    chars = sum(len(d.text) for v in splits.values() for d in v)
    print(
        f"{sum(len(v) for v in splits.values())} documents ({chars / 1e6:.1f}M chars): {counts}; "
        f"duplicates dropped: {dedup.dropped_exact} exact, {dedup.dropped_near} near"
    )


def pandoc_version() -> str:
    out = subprocess.run(["pandoc", "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.returncode == 0 and out.stdout else "?"


if __name__ == "__main__":
    main()
