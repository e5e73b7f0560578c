"""The corpus pipeline on small fixtures: conversion, deduplication, and the splits by document and source."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from diffedit.training import corpus
from diffedit.training import sources as src
from diffedit.training.corpus import Document, deduplicate, is_heldout, split_blocks, split_of
from diffedit.training.dedup import Deduplicator, normalized

needs_pandoc = pytest.mark.skipif(shutil.which("pandoc") is None, reason="pandoc is not installed")
needs_pod2markdown = pytest.mark.skipif(
    shutil.which("pod2markdown") is None or shutil.which("pandoc") is None,
    reason="pod2markdown (libpod-markdown-perl) or pandoc is not installed",
)

HTML = """<html><body>
<div id="banner"><a href="http://example.org/get">Download the ebook</a></div>
<ul class="docnav top"><li><a href="prev.html"><strong>Prev</strong></a></li>
<li>The Handbook of Everything Worth Reading Twice</li><li><a href="next.html">Next</a></li></ul>
<div class="toc"><p>6.1. Contents entry that must not survive the conversion at all</p></div>
<h2>6.2.&#160;Installing the <code class="command">apt</code> tools</h2>
<p>APT is a vast project whose original plans included a graphical interface, as
<a href="https://example.org/apt">the APT homepage</a> explains in some detail.</p>
<table><tr><td>a table cell that is dropped because tables are not prose</td></tr></table>
<pre class="screen">$ sudo apt update</pre>
<div class="navfooter"><p>Previous chapter and next chapter links for the reader</p></div>
</body></html>
"""

POD = """=head1 NAME

perlfixture - a small manual page

=head1 DESCRIPTION

This manual page explains how the fixture works and why it is here at all.

    print "hello, world\\n";

=cut
"""

WORDNET = [
    "  1 This software and database is being provided to you, the LICENSEE, by  ",
    "  29 PRINCETON MAKES NO REPRESENTATIONS | OR WARRANTIES, EXPRESS OR IMPLIED.  ",
    "00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 | that which is perceived or known or inferred "
    '"the entity had a distinct existence"  ',
    "00003131 00 a 02 able(a) 0 unable 0 001 = 05207437 n 0000 | (usually followed by `to') having the "
    "necessary means or skill",
]


@needs_pandoc
def test_html_becomes_markdown_prose_without_navigation_tables_or_numbers(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(HTML, encoding="utf-8")
    markdown = src.strip_heading_numbers(src.html_to_markdown(page))
    text = corpus.clean_document(markdown)
    blocks = split_blocks(text)
    assert blocks[0] == "## Installing the `apt` tools"  # number (and its no-break space) gone
    assert blocks[1].startswith("APT is a vast project") and "the APT homepage explains" in blocks[1]
    assert "https://example.org" not in text  # links keep their text only
    assert blocks[2] == "```shell\n$ sudo apt update\n```"  # a screen becomes a fenced shell block
    for gone in ("Download", "Prev", "Handbook of Everything", "Contents entry", "table cell", "navigation"):
        assert gone not in text, gone


@needs_pod2markdown
def test_pod_becomes_markdown_with_fenced_code(tmp_path: Path) -> None:
    page = tmp_path / "perlfixture.pod"
    page.write_text(POD, encoding="utf-8")
    text = corpus.clean_document(src.pod_to_markdown(page))
    blocks = split_blocks(text)
    assert blocks[0] == "# DESCRIPTION"  # NAME's one-line fragment goes, and with it its heading
    assert blocks[1] == "This manual page explains how the fixture works and why it is here at all."
    assert blocks[2].startswith("```") and 'print "hello, world\\n";' in blocks[2]


def test_wordnet_glosses_become_short_paragraphs(tmp_path: Path) -> None:
    assert src.wordnet_gloss(WORDNET[0]) is None and src.wordnet_gloss(WORDNET[1]) is None  # licence header
    assert src.wordnet_gloss(WORDNET[2]) == (
        "03",
        '**entity**: that which is perceived or known or inferred "the entity had a distinct existence"',
    )
    _, para = src.wordnet_gloss(WORDNET[3]) or ("", "")
    assert para.startswith("**able**, **unable**: (usually followed by")  # the (a) marker dropped
    (tmp_path / "data.adj").write_text("\n".join(WORDNET) + "\n", encoding="utf-8")
    docs = list(src.wordnet_documents(tmp_path, group=40))
    assert [name for name, _ in docs] == [
        "data.adj/03/00000",
        "data.adj/00/00001",
    ]  # a new lex file: a new doc


def test_heading_numbers_go_but_words_stay() -> None:
    assert src.strip_heading_numbers("## 6.2.1. Initialization") == "## Initialization"
    assert src.strip_heading_numbers("# Chapter 6. Maintenance") == "# Maintenance"
    assert src.strip_heading_numbers("### 4.3 Library Behavior") == "### Library Behavior"
    assert src.strip_heading_numbers("## A.1 Appendix part") == "## Appendix part"
    assert src.strip_heading_numbers("## A Simple Example") == "## A Simple Example"
    assert src.strip_heading_numbers("Plain 4.3 text") == "Plain 4.3 text"


def test_one_file_manual_splits_into_chapters_but_never_inside_code() -> None:
    md = (
        "Front matter.\n\n# Manual\n\nIntro.\n\n## Usage\n\n```sh\n# not a heading\n```\n\n## Usage\n\nAgain."
    )
    parts = src.split_chapters(md)
    assert [slug for slug, _ in parts] == ["front", "manual", "usage", "usage-2"]
    assert "# not a heading" in parts[2][1]


LONG = (
    "The package manager downloads the lists of available packages from every configured source, "
    "compares them with the installed versions and proposes the upgrades it found. It then asks for "
    "confirmation, fetches the archives into its cache, checks their signatures against the keys it "
    "trusts, and unpacks them in an order that keeps every dependency satisfied at each step."
)


def test_exact_duplicates_match_after_normalisation() -> None:
    d = Deduplicator()
    assert d.is_new(LONG)
    assert not d.is_new("**" + LONG.upper().replace(",", " ,") + "**")
    assert normalized("`apt` **Note:**  it") == "apt note it"
    assert d.dropped_exact == 1 and d.dropped_near == 0


def test_near_duplicates_are_dropped_and_different_text_is_kept() -> None:
    d = Deduplicator()
    assert d.is_new(LONG)
    assert not d.is_new(LONG.replace("proposes", "suggests"))  # one word changed in 61: Jaccard 0.91
    assert d.dropped_near == 1
    assert d.is_new("Perl's hashes map strings to scalars; iterating over one with each returns its pairs.")
    assert d.is_new(LONG.split(",")[0] + ", and nothing else happens to any of the files on the disk today.")


def doc(source: str, paragraphs: list[str], origin: str = "python") -> Document:
    return Document(source, "\n\n".join(["# Title", *paragraphs]), origin)


PARAS = [
    "The installer asks a few questions about the keyboard, the network and the disks before it starts.",
    "Each package declares what it depends on, and the resolver finds versions that satisfy all of them.",
    "Configuration files under /etc are kept across upgrades unless the administrator chooses otherwise.",
    "A mirror close to the machine makes downloads faster, and any mirror serves the same signed files.",
    "Security updates arrive through their own archive so that they can be published within hours.",
    "Backports bring newer versions of selected programs to the stable release without replacing it.",
]
OTHER = [
    "Write the program so that it handles arbitrarily long input lines and file names without limits.",
    "Error messages should start with the program's name, then the file name and line number if any.",
    "Every program should support the standard options for printing its version and a short usage text.",
]


def heldout_and_train_sources(count: int = 200) -> tuple[str, str]:
    names = [f"library/page{i}.rst.txt" for i in range(count)]
    return next(n for n in names if is_heldout(n)), next(n for n in names if not is_heldout(n))


def test_split_is_by_document_and_by_held_out_source() -> None:
    held, train = heldout_and_train_sources()
    assert split_of(Document(held, ""), ()) == "heldout"
    assert split_of(Document(train, ""), ()) == "train"
    assert split_of(Document(train, "", "gnu-standards"), ("gnu-standards",)) == "heldout_source"
    docs = [
        doc(held, PARAS[:5]),
        doc(train, PARAS[1:6]),  # shares four paragraphs with the held-out document
        doc("gnu-standards/standards.html#intro", OTHER, "gnu-standards"),
    ]
    splits, dedup = deduplicate(docs, ("gnu-standards",), min_prose_blocks=1)
    assert [d.source for d in splits["heldout_source"]] == ["gnu-standards/standards.html#intro"]
    assert [d.source for d in splits["heldout"]] == [held]
    assert split_blocks(splits["heldout"][0].text)[1:] == PARAS[:5]  # held-out text stays whole
    # the training document loses what the held-out one already has; its heading (structure) stays
    assert split_blocks(splits["train"][0].text) == ["# Title", PARAS[5]]
    assert dedup.dropped_exact == 4


def test_a_document_emptied_by_deduplication_is_dropped() -> None:
    held, train = heldout_and_train_sources()
    splits, _ = deduplicate([doc(held, PARAS), doc(train, PARAS)], (), min_prose_blocks=4)
    assert [d.source for d in splits["heldout"]] == [held] and splits["train"] == []


def test_a_package_outside_main_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corpus, "package_status", lambda p: ("1.0", "non-free/doc"))
    with pytest.raises(SystemExit, match="non-free, not main"):
        corpus.check_free(src.SOURCES[:1])
    monkeypatch.setattr(corpus, "package_status", lambda p: ("1.0", "doc"))
    assert corpus.check_free(src.SOURCES[:1]) == {"python": "1.0"}


def test_documents_round_trip_with_their_origin(tmp_path: Path) -> None:
    docs = [Document("a.rst.txt", "text"), Document("wordnet/data.noun/03/00000", "gloss", "wordnet")]
    corpus.write_jsonl(tmp_path / "x.jsonl", docs)
    assert corpus.read_documents(tmp_path / "x.jsonl") == docs
    assert corpus.read_documents(tmp_path / "missing.jsonl", missing_ok=True) == []
    with pytest.raises(FileNotFoundError):
        corpus.read_documents(tmp_path / "missing.jsonl")


def test_minhash_estimates_the_jaccard_similarity() -> None:
    import random
    import statistics

    from diffedit.training.dedup import estimated_jaccard, jaccard, shingles, signature

    rng = random.Random(0)
    words = normalized(LONG).split()
    errors = []
    for _ in range(100):
        edited = list(words)
        for k in range(rng.randint(0, 12)):
            edited[rng.randrange(len(edited))] = f"other{k}"
        a, b = shingles(" ".join(words)), shingles(" ".join(edited))
        errors.append(abs(jaccard(a, b) - estimated_jaccard(signature(a), signature(b))))
    assert statistics.fmean(errors) < 0.06  # 64 hashes: about 0.04 expected
    # half the paragraph shared is not a near duplicate
    d = Deduplicator()
    assert d.is_new(LONG)
    assert d.is_new(LONG[: len(LONG) // 2] + " Nothing of this happens when the network is down, of course.")
