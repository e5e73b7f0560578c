"""Where the demo corpus comes from: openly licensed Debian packages (main, DFSG-free), one converter each.

Each :class:`Source` names its Debian package, the licence read from the package's ``copyright`` file, its
register (what kind of writing it is), and how its files become Markdown:

* ``rst``: Sphinx reST sources through pandoc and ``rst_to_md.lua`` (the Python documentation);
* ``html``: DocBook, asciidoc and texinfo HTML through pandoc and ``html_to_md.lua``;
* ``pod``: Perl's POD through ``pod2markdown`` (libpod-markdown-perl), then pandoc and ``html_to_md.lua``;
* ``wordnet``: WordNet's synset glosses as short paragraphs (one paragraph a synset).

A converter yields ``(source, markdown)`` pairs: one per file, or one per chapter for a manual that is a
single HTML file (``chapters=True``), so that held-out documents can still be drawn from it.
"""

from __future__ import annotations

import re
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HTML_FILTER = Path(__file__).with_name("html_to_md.lua")
RST_FILTER = Path(__file__).with_name("rst_to_md.lua")


@dataclass(frozen=True)
class Source:
    name: str  # the documents' origin; also the prefix of their source paths (except the Python docs')
    packages: tuple[str, ...]  # Debian packages it is installed from (the first one carries the text)
    licence: str  # as read from /usr/share/doc/PACKAGE/copyright
    register: str
    kind: str  # rst | html | pod | wordnet
    root: str
    pattern: str
    skip: str = ""  # a regular expression on the path relative to root: files left out
    chapters: bool = False  # a one-file manual: each level-1/2 section becomes a document
    max_documents: int | None = None  # a fixed, hash-chosen subset (keeps one source from dominating)


PYTHON = "python"

SOURCES: tuple[Source, ...] = (
    Source(
        PYTHON,
        ("python3.11-doc",),
        "PSF-2.0 (code examples also 0BSD)",
        "library reference and tutorials (Python)",
        "rst",
        "/usr/share/doc/python3.11/html/_sources",
        "**/*.rst.txt",
        skip=r"^(c-api|whatsnew|includes|distutils)/|(^|/)(contents|genindex|license|copyright|glossary)\.rst\.txt$",
    ),
    Source(
        "debian-handbook",
        ("debian-handbook",),
        "GPL-2.0+ or CC-BY-SA-3.0",
        "book: system administration",
        "html",
        "/usr/share/doc/debian-handbook/html/en-US",
        "*.html",
        skip=r"^(index|ix01)\.html$",
    ),
    Source(
        "debian-reference",
        ("debian-reference-en", "debian-reference-common"),
        "GPL-2+",
        "user guide and reference: Debian system",
        "html",
        "/usr/share/debian-reference",
        "*.en.html",
        skip=r"^index\.en\.html$",
        chapters=True,  # 14 long chapters: their sections are the documents
    ),
    Source(
        "perl-doc",
        ("perl-doc",),
        "GPL-1+ or Artistic",
        "manual pages, FAQ and tutorials (Perl)",
        "pod",
        "/usr/share/perl/5.36.0/pod",
        "*.pod",
        skip=r"delta|^perl(api|intern|toc|artistic|gpl|hist|diag|modlib|uniprops|cn|jp|ko|tw|cheat|reref)\.pod$",
    ),
    Source(
        "git-doc",
        ("git-doc",),
        "GPL-2",
        "manual pages and user manual (git)",
        "html",
        "/usr/share/doc/git-doc",
        "**/*.html",
        skip=r"(^|/)RelNotes|^index\.html$",
    ),
    Source(
        "bash-doc",
        ("bash-doc",),
        "GFDL-1.3 (no invariant sections)",
        "GNU manual: the Bash reference",
        "html",
        "/usr/share/doc/bash",
        "bashref.html",
        chapters=True,
    ),
    Source(
        "gnu-standards",
        ("gnu-standards",),
        "GFDL-1.3 (no invariant sections)",
        "GNU manual: coding standards and maintainers' guide (prose)",
        "html",
        "/usr/share/doc/gnu-standards",
        "*.html",
        chapters=True,
    ),
    Source(
        "wordnet",
        ("wordnet-base",),
        "WordNet-3.0 (BSD-like, Princeton University)",
        "dictionary glosses",
        "wordnet",
        "/usr/share/wordnet",
        "data.*",
        max_documents=400,
    ),
)
# Whole sources never trained on (nor seen by the tokenizer): "text not from its corpus".
HELDOUT_SOURCES = ("gnu-standards",)


def by_name(names: list[str] | None) -> tuple[Source, ...]:
    if not names:
        return SOURCES
    known = {s.name: s for s in SOURCES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return tuple(known[n] for n in names)


# ---------------------------------------------------------------- files


def source_files(source: Source, root: Path | None = None) -> list[Path]:
    base = Path(source.root) if root is None else root
    skip = re.compile(source.skip) if source.skip else None
    files = sorted(p for p in base.glob(source.pattern) if p.is_file())
    return [p for p in files if skip is None or not skip.search(p.relative_to(base).as_posix())]


def pandoc(args: list[str], text: str | None = None, path: Path | None = None) -> str:
    cmd = ["pandoc", *args, "-t", "gfm", "--wrap=none"]
    if path is not None:
        cmd.append(str(path))
    out = subprocess.run(cmd, input=text, capture_output=True, text=True, check=False)
    return out.stdout if out.returncode == 0 else ""


def rst_to_markdown(path: Path) -> str:
    return pandoc(["-f", "rst", "--lua-filter", str(RST_FILTER)], path=path)


# Navigation lists pandoc cannot tell from content (their class is lost on a list): removed from the HTML.
HTML_NAV = re.compile(r'<ul class="docnav[^"]*".*?</ul>', re.DOTALL)


def html_to_markdown(path: Path) -> str:
    html = HTML_NAV.sub("", path.read_text(encoding="utf-8", errors="replace"))
    return pandoc(["-f", "html", "--lua-filter", str(HTML_FILTER)], text=html)


def pod_to_markdown(path: Path) -> str:
    out = subprocess.run(["pod2markdown", str(path)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return ""
    return pandoc(["-f", "markdown", "--lua-filter", str(HTML_FILTER)], text=out.stdout)


# Chapter/section numbers of manuals ("Chapter 6. ", "6.2.1. ", "4.3 ", "A.1 "): the text of a heading stays.
HEADING_NUMBER = re.compile(
    r"^(#{1,6}) +(?:(?:Chapter|Appendix|Section) +)?"
    r"(?:[0-9]+(?:\.[0-9]+)*\.?|[A-Z](?:\.[0-9]+)+\.?|[A-Z]\.)[ \u00a0]+(?=\S)"
)


def strip_heading_numbers(markdown: str) -> str:
    return "\n".join(HEADING_NUMBER.sub(r"\1 ", line) for line in markdown.splitlines())


def split_chapters(markdown: str, max_level: int = 2) -> list[tuple[str, str]]:
    """(slug, text) per section starting at a heading of level <= ``max_level``; text before the first
    such heading is its own part (slug ``front``). Fenced code is never split."""
    parts: list[tuple[str, list[str]]] = [("front", [])]
    in_fence = False
    heading = re.compile(rf"^#{{1,{max_level}}} +(.+)$")
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        m = None if in_fence else heading.match(line)
        if m:
            parts.append((slugify(m.group(1)), [line]))
        else:
            parts[-1][1].append(line)
    out: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for slug, lines in parts:
        text = "\n".join(lines).strip()
        if not text:
            continue
        seen[slug] = seen.get(slug, 0) + 1
        out.append((slug if seen[slug] == 1 else f"{slug}-{seen[slug]}", text))
    return out


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "section"


# ---------------------------------------------------------------- WordNet


def wordnet_gloss(line: str) -> tuple[str, str] | None:
    """(lexicographer file number, paragraph) of one ``data.*`` line, or None for a licence header line.

    ``00001740 03 n 01 entity 0 003 ... | that which is perceived ...; "an example"`` becomes
    ``**entity**: that which is perceived ...; "an example"``: the synset's words (underscores as spaces,
    adjective markers like ``(a)`` dropped) in bold, then the gloss as written.
    """
    if line.startswith(" ") or "|" not in line:
        return None
    head, gloss = line.split("|", 1)
    fields = head.split()
    if len(fields) < 5:
        return None
    lex_file = fields[1]
    count = int(fields[3], 16)
    words = [re.sub(r"\([a-z]+\)$", "", w).replace("_", " ") for w in fields[4 : 4 + 2 * count : 2]]
    unique = list(dict.fromkeys(words))
    gloss = gloss.strip()
    if not gloss:
        return None
    return lex_file, ", ".join(f"**{w}**" for w in unique) + ": " + gloss


def wordnet_documents(root: Path, group: int = 40) -> Iterator[tuple[str, str]]:
    """Glosses in groups of ``group`` consecutive synsets of one lexicographer file, a document each."""
    for path in sorted(root.glob("data.*")):
        current: list[str] = []
        current_lex = ""
        index = 0
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parsed = wordnet_gloss(line)
            if parsed is None:
                continue
            lex, para = parsed
            if current and (lex != current_lex or len(current) >= group):
                yield f"{path.name}/{current_lex}/{index:05d}", "\n\n".join(current)
                index += 1
                current = []
            current_lex = lex
            current.append(para)
        if current:
            yield f"{path.name}/{current_lex}/{index:05d}", "\n\n".join(current)


# ---------------------------------------------------------------- dispatch


def keep_subset(source: Source, items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """At most ``max_documents`` items, chosen by a hash of their name (stable across runs and machines)."""
    if source.max_documents is None or len(items) <= source.max_documents:
        return items
    ranked = sorted(items, key=lambda it: zlib.crc32(it[0].encode("utf-8")))
    keep = {name for name, _ in ranked[: source.max_documents]}
    return [it for it in items if it[0] in keep]


def convert(source: Source, root: Path | None = None) -> Iterator[tuple[str, str]]:
    """(document source path, Markdown) of every document of ``source``, in a stable order."""
    base = Path(source.root) if root is None else root
    if source.kind == "wordnet":
        yield from keep_subset(source, [(f"{source.name}/{n}", t) for n, t in wordnet_documents(base)])
        return
    converters = {"rst": rst_to_markdown, "html": html_to_markdown, "pod": pod_to_markdown}
    to_markdown = converters[source.kind]
    items: list[tuple[str, str]] = []
    for path in source_files(source, base):
        rel = path.relative_to(base).as_posix()
        name = rel if source.name == PYTHON else f"{source.name}/{rel}"  # the Python docs keep their names
        markdown = strip_heading_numbers(to_markdown(path))
        if source.chapters:
            items += [(f"{name}#{slug}", text) for slug, text in split_chapters(markdown)]
        else:
            items.append((name, markdown))
    yield from keep_subset(source, items)
