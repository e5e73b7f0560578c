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
    # no demo_comparison.json: this model's figures alone, no figure of another model claimed
    assert "rate, held-out source (not from its corpus) | **0.93** (1,100 words) | 0.98 |" in card
    assert "| repetition (share of repeated word pairs), held-out documents | 0.02 | 0.01 |" in card
    assert "first demo" not in card and "compare_demos` adds one" in card
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
    ck = checkpoint_with_results(tmp_path)
    res = json.loads((ck / "eval_results.json").read_text(encoding="utf-8"))
    del res["dictionary"]
    (ck / "eval_results.json").write_text(json.dumps(res), encoding="utf-8")
    card = render(ck, data)
    assert "has seen only Python\ndocumentation" in card
    assert "held out **by document** (a hash of the source path" in card and "`howto/sorting.rst.txt`" in card
    assert "## Rewrites of held-out blocks" not in card  # no dictionary results: no such section


def test_the_card_says_whether_accuracy_read_all_held_out_examples_or_a_seeded_draw() -> None:
    from diffedit.training.model_card import examples_phrase

    assert examples_phrase({"heldout_examples": 1462}) == "all 1,462 held-out examples"
    capped = {"heldout_examples": 10705, "accuracy_examples": 2000, "accuracy_seed": 0}
    assert examples_phrase(capped) == "2,000 of the 10,705 held-out examples (drawn by seed 0)"


def test_card_shows_the_side_by_side_comparison_when_compare_demos_wrote_one(tmp_path: Path) -> None:
    ck = checkpoint_with_results(tmp_path)

    def side(acc: float, docs_rate: float, src_rate: float) -> dict[str, object]:
        return {
            "accuracy": acc,
            "accuracy_examples": 2000,
            "heldout_examples": 10705,
            "heldout_documents_dictionary_word_rate": docs_rate,
            "heldout_documents_words": 936,
            "heldout_documents_repetition": 0.0113,
            "heldout_source_dictionary_word_rate": src_rate,
            "heldout_source_words": 762,
            "heldout_source_repetition": 0.0027,
        }

    comparison = {
        "previous": "/tmp/old",
        "previous_split": {
            "sources": ["python"],
            "documents": 15,
            "previous": {"examples": 1448, "renoised_positions": 40498, "accuracy": 0.1384},
            "this": {"examples": 1360, "renoised_positions": 38000, "accuracy": 0.1411},
        },
        "heldout_split": {
            "documents": 102,
            "previous": side(0.0948, 0.8024, 0.7795),
            "this": side(0.1348, 0.8564, 0.8301),
        },
    }
    (ck / "demo_comparison.json").write_text(json.dumps(comparison), encoding="utf-8")
    card = render(ck, corpus_dir(tmp_path))
    assert "`python -m diffedit.training.compare_demos`" in card
    assert (
        "first demo's held-out split (15 `python` documents; 1,448 and 1,360 examples) "
        "| 0.1384 | **0.1411** |" in card
    )
    assert (
        "this model's held-out split (102 documents, 2,000 examples drawn by seed) | 0.0948 | **0.1348** |"
        in card
    )
    assert (
        "| dictionary-word rate, held-out documents | 0.8024 (936 words) | **0.8564 (936 words)** | 0.97 |"
        in card
    )
    assert "(not from either corpus) | 0.7795 (762 words) | **0.8301 (762 words)** | 0.98 |" in card
    assert "no comparison with another demo was measured" not in card


def test_card_quotes_the_measured_rewrite_latency_beside_the_previous_demo(tmp_path: Path) -> None:
    ck = checkpoint_with_results(tmp_path)
    side = {"machine": "x86_64, 2 threads", "device": "cpu", "paragraphs": 20, "total_s_max": 0.4}
    latency = {
        **side,
        "model": "new",
        "total_s_median": 0.248,
        "steps_median": 8.0,
        "step_ms_median": 28.4,
        "versus": {**side, "model": "old-demo", "total_s_median": 0.347, "steps_median": 18},
        "median_ratio": 0.715,
    }
    latency["versus"]["step_ms_median"] = 16.8
    (ck / "rewrite_latency.json").write_text(json.dumps(latency), encoding="utf-8")
    data = corpus_dir(tmp_path)
    card = render(ck, data)
    assert "20 held-out paragraphs through `Engine.rewrite`, default settings, x86_64, 2 threads, cpu" in card
    assert "median **0.248 s**, max 0.4 s, 8 steps (median) of 28.4 ms." in card
    assert "The previous demo (`old-demo`) on the same paragraphs" in card and "(ratio 0.715)" in card
    (ck / "rewrite_latency.json").unlink()
    assert "rewrite_latency.py" not in render(ck, data)  # not measured: not claimed


def test_the_card_says_where_a_later_phase_picked_up_the_data_order() -> None:
    from diffedit.training.model_card import continuation_note

    first = {"args": {"steps": "1600", "seed": "0", "batch_size": "16"}, "wall_time_min": 105.3}
    assert continuation_note(first) == ""
    second = {"args": {}, "previous_phases": [first], "skipped_batches": 1600}
    note = continuation_note(second)
    assert "fresh optimizer" in note and "skipping the 1,600 batches" in note
    assert "skipping" not in continuation_note({**second, "skipped_batches": 0})


def test_the_higher_figure_is_the_bold_one_and_the_blocks_read_are_named() -> None:
    from diffedit.training.model_card import blocks_phrase, bold_higher

    assert bold_higher(0.1384, 0.1314) == ("**0.1384**", "0.1314")  # the first demo's, where it is higher
    assert bold_higher(0.0948, 0.1348) == ("0.0948", "**0.1348**")
    assert bold_higher(0.5, 0.5) == ("0.5", "0.5")
    swept = {"heldout_documents": {"blocks": 40}, "skipped_sweep_blocks": 24}
    assert blocks_phrase(swept) == (
        "40 blocks of each set; the held-out documents' are the 40 after the 24 the sampling sweep chose "
        "the sampler on"
    )
    assert blocks_phrase({"heldout_documents": {"blocks": 40}}) == "40 blocks of each set"
