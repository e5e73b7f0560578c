"""compare_demos: both checkpoints measured on the previous demo's split and the new held-out split."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from diffedit.resources import resources_dir
from diffedit.training import corpus
from diffedit.training.compare_demos import COMPARISON_FILE, compare, figures, main, same_evaluation
from diffedit.training.corpus import Document
from diffedit.training.evaluate_demo import RESULTS_FILE

DEMO = resources_dir() / "models" / "diffedit-demo"


def results(documents: int = 2, examples: int = 10, blocks: int = 4, skipped: int = 0) -> dict[str, object]:
    def block(rate: float) -> dict[str, object]:
        return {"blocks": blocks, "dictionary_word_rate": rate, "words": 50, "repetition": 0.01}

    return {
        "heldout_documents": documents,
        "heldout_examples": examples,
        "accuracy_examples": examples,
        "accuracy_seed": 0,
        "model_accuracy": 0.12,
        "dictionary": {
            "heldout_documents": block(0.8),
            "heldout_source": block(0.7),
            "skipped_sweep_blocks": skipped,
        },
    }


def test_same_evaluation_needs_the_same_documents_draw_and_blocks() -> None:
    assert same_evaluation(results(), results())
    assert not same_evaluation(results(), results(documents=3))
    assert not same_evaluation(results(), results(examples=11))
    assert not same_evaluation(results(), results(blocks=5))
    assert not same_evaluation(results(), results(skipped=24))  # other blocks of the same documents


def test_figures_keep_the_comparable_numbers() -> None:
    f = figures(results())
    assert f["accuracy"] == 0.12 and f["accuracy_examples"] == 10
    assert f["heldout_documents_dictionary_word_rate"] == 0.8 and f["heldout_source_words"] == 50


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the bundled demo (its weights linked) as the new checkpoint, and a two-source corpus."""
    ck = tmp_path / "new"
    ck.mkdir()
    for f in DEMO.iterdir():
        (ck / f.name).symlink_to(f) if f.name == "model.safetensors" else shutil.copy(f, ck / f.name)
    rows = [json.loads(line) for line in (DEMO / "heldout_sample.jsonl").read_text().splitlines()[:6]]
    text = "\n\n".join(r["target"] for r in rows)
    data = tmp_path / "data"
    (data / "corpus").mkdir(parents=True)
    corpus.write_jsonl(
        data / "corpus" / "heldout.jsonl",
        [Document("py.rst.txt", text), Document("wordnet/x/1", "**word**: a gloss of it", "wordnet")],
    )
    (ck / RESULTS_FILE).write_text(json.dumps(results()), encoding="utf-8")
    return ck, data


def written(path: Path, **kw: int) -> Path:
    path.write_text(json.dumps(results(**kw)), encoding="utf-8")
    return path


def test_the_same_weights_score_the_same_on_the_previous_split(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    ck, data = setup
    out = compare(ck, DEMO, data, ("python",), written(tmp_path / "prev.json"))
    first = out["previous_split"]
    assert first["documents"] == 1  # the wordnet document is not the previous demo's split
    assert first["previous"]["examples"] >= 6 and first["previous"]["renoised_positions"] > 100
    assert first["previous"] == first["this"]  # same weights, same tokenizer, same seed: same figures
    assert 0.0 < first["this"]["accuracy"] < 1.0
    assert out["heldout_split"]["previous"]["heldout_source_dictionary_word_rate"] == 0.7


def test_results_of_another_evaluation_are_refused(setup: tuple[Path, Path], tmp_path: Path) -> None:
    ck, data = setup
    other = written(tmp_path / "other.json", documents=99)
    with pytest.raises(SystemExit, match="did not read the same held-out documents"):
        compare(ck, DEMO, data, ("python",), other)
    with pytest.raises(SystemExit, match="no held-out documents of perl-doc"):
        compare(ck, DEMO, data, ("perl-doc",), other)


def test_main_writes_the_comparison_next_to_the_new_weights_only(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    ck, data = setup
    prev_results = written(tmp_path / "prev.json")
    before = sorted(p.name for p in DEMO.iterdir())
    args = ["--checkpoint", str(ck), "--previous", str(DEMO), "--data", str(data), "--nice", "0"]
    main([*args, "--previous-results", str(prev_results), "--threads", "1"])
    assert json.loads((ck / COMPARISON_FILE).read_text())["previous"] == str(DEMO)
    assert sorted(p.name for p in DEMO.iterdir()) == before  # the previous checkpoint is only read
    with pytest.raises(SystemExit, match="the same directory"):
        main(["--checkpoint", str(DEMO), "--previous", str(DEMO)])
