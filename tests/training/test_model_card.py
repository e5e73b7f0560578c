"""The model card: sources and licences, the curve figure, the comparison with the first demo, and the
rewrites drawn by seed, rendered from a checkpoint's files (the bundled demo's, with added results)."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from diffedit.resources import resources_dir
from diffedit.training import corpus
from diffedit.training.corpus import Document
from diffedit.training.model_card import curve_svg, read_curve, render

DEMO = resources_dir() / "models" / "diffedit-demo"


def test_curve_figure_is_svg_with_one_line_per_series() -> None:
    rows = read_curve(DEMO / "training_curve.csv")
    root = ET.fromstring(curve_svg(rows))
    lines = [e for e in root.iter("{http://www.w3.org/2000/svg}polyline") if e.get("stroke-width") == "2"]
    assert len(lines) == 3  # loss; model accuracy; baseline
    assert all(len(e.get("points", "").split()) == len(rows) for e in lines)


def source_row(
    name: str, package: str, licence: str, train: int, held: int, held_src: int
) -> dict[str, object]:
    def split(n: int) -> dict[str, int]:
        return {"documents": n, "blocks": 10 * n, "chars": 1000 * n}

    return {
        "source": name,
        "packages": [package],
        "version": "1.0-1",
        "licence": licence,
        "register": f"register of {name}",
        "copyright_file": f"/usr/share/doc/{package}/copyright",
        "train": split(train),
        "heldout": split(held),
        "heldout_source": split(held_src),
    }


def checkpoint_with_results(tmp_path: Path) -> Path:
    ck = tmp_path / "ck"
    ck.mkdir()
    for name in ("config.json", "training_run.json", "training_curve.csv", "generation_config.json"):
        shutil.copy(DEMO / name, ck / name)
    (ck / "model.safetensors").symlink_to(DEMO / "model.safetensors")
    res = json.loads((DEMO / "eval_results.json").read_text(encoding="utf-8"))
    res["dictionary"] = {
        "words_file": "/usr/share/dict/words",
        "heldout_documents": {
            "blocks": 40,
            "dictionary_word_rate": 0.91,
            "words": 1200,
            "repetition": 0.02,
            "original": {"dictionary_word_rate": 0.97, "repetition": 0.01},
        },
        "heldout_source": {
            "blocks": 40,
            "dictionary_word_rate": 0.93,
            "words": 1100,
            "repetition": 0.03,
            "original": {"dictionary_word_rate": 0.98, "repetition": 0.0},
        },
        "rewrite_seed": 14,
        "rewrites": [
            {
                "set": "heldout_source" if i % 2 else "heldout_documents",
                "original": f"Before {i}.",
                "rewritten": f"After {i}\nsecond line." if i else "",
            }
            for i in range(10)
        ],
    }
    (ck / "eval_results.json").write_text(json.dumps(res), encoding="utf-8")
    return ck


def corpus_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "corpus").mkdir(parents=True)
    corpus.write_jsonl(
        data / "corpus" / "train.jsonl", [Document("a.rst.txt", "x"), Document("wordnet/d/1", "y", "wordnet")]
    )
    corpus.write_jsonl(data / "corpus" / "heldout.jsonl", [Document("b.rst.txt", "z")])
    summary = {
        "sources": [
            source_row("python", "python3.11-doc", "PSF-2.0", 300, 15, 0),
            source_row("wordnet", "wordnet-base", "WordNet-3.0", 350, 30, 0),
            source_row("gnu-standards", "gnu-standards", "GFDL-1.3 (no invariant sections)", 0, 0, 28),
        ],
        "heldout_sources": ["gnu-standards"],
        "heldout_percent": 8,
        "duplicates_dropped": {"exact": 2650, "near": 2621},
        "pandoc": "pandoc 2.17.1.1",
    }
    (data / "corpus" / "sources.json").write_text(json.dumps(summary), encoding="utf-8")
    return data


def test_card_has_sources_licences_comparison_and_the_seeded_rewrites(tmp_path: Path) -> None:
    card = render(checkpoint_with_results(tmp_path), corpus_dir(tmp_path))
    assert "| gnu-standards | `gnu-standards` 1.0-1 | GFDL-1.3 (no invariant sections) |" in card
    assert (
        "| wordnet | `wordnet-base` 1.0-1 | WordNet-3.0 | register of wordnet | 350 | 350,000 | 30 | no |"
        in card
    )
    assert "| 0 | 0 | 28 | **yes** |" in card  # the held-out source: its documents, marked
    assert "2,650 exact and 2,621 near duplicates dropped" in card
    assert "has seen only Python" not in card
    assert "| one-pass accuracy at 50% noise (own held-out split) | 0.1392 | **0.1392** |" in card
    assert "held-out source (not from its corpus) | 0.8333 | **0.93** (1,100 words) | 0.98 |" in card
    assert "![Training curve" in card and "training_curve.svg" in card
    assert "`random.Random(14)`" in card
    for i in range(1, 10):
        assert f"> Before {i}.\n\nAfter:\n\n> After {i}\n> second line." in card
    assert "**1** (held-out document). Before:\n\n> Before 0.\n\nAfter:\n\n> (empty)" in card


def test_card_of_a_python_only_model_keeps_the_first_demos_data_section(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "corpus").mkdir(parents=True)
    corpus.write_jsonl(data / "corpus" / "train.jsonl", [Document("a.rst.txt", "x")])
    corpus.write_jsonl(data / "corpus" / "heldout.jsonl", [Document("howto/sorting.rst.txt", "z")])
    card = render(DEMO, data)
    assert "has seen only Python\ndocumentation" in card
    assert "held out **by document** (a hash of the source path" in card and "`howto/sorting.rst.txt`" in card
    assert "## Rewrites of held-out blocks" not in card  # no dictionary results: no such section


def test_the_card_says_whether_accuracy_read_all_held_out_examples_or_a_seeded_draw() -> None:
    from diffedit.training.model_card import examples_phrase

    assert examples_phrase({"heldout_examples": 1462}) == "all 1,462 held-out examples"
    capped = {"heldout_examples": 10705, "accuracy_examples": 2000, "accuracy_seed": 0}
    assert examples_phrase(capped) == "2,000 of the 10,705 held-out examples (drawn by seed 0)"
