"""The new demo checkpoint against the previous one, each measured here, side by side.

    python -m diffedit.training.compare_demos --checkpoint runs/diffedit-demo-2 \
        [--previous diffedit/resources/models/diffedit-demo] [--data data]

Two comparisons, both on documents neither model trained on:

* **the previous demo's own held-out split**: the held-out documents of ``--previous-sources`` (the first
  demo was trained on the Python documentation alone; its 15 held-out documents are the ``python`` ones of
  ``heldout.jsonl``, chosen by the same hash). One-pass accuracy on every example of them, each model with
  its own tokenizer (so the same documents, not the same tokens).
* **the new held-out split**: :func:`diffedit.training.evaluate_demo.evaluate` run on the previous
  checkpoint with the same data (the same fixed-seed draw of held-out examples, the same dictionary blocks
  and rewrite seeds), next to the new checkpoint's own ``eval_results.json``.

Writes ``demo_comparison.json`` next to the new weights (the model card reads it); the previous
checkpoint is only read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from diffedit.training import corpus
from diffedit.training.checkpoint import DEMO_DIR
from diffedit.training.evaluate_demo import RESULTS_FILE, evaluate, load_checkpoint, training_budget
from diffedit.training.examples import build_examples
from diffedit.training.metrics import one_pass_accuracy
from diffedit.training.niceness import nice_to

COMPARISON_FILE = "demo_comparison.json"
PREVIOUS_SOURCES = ("python",)  # what the first demo was trained and held out on


def split_accuracy(checkpoint: Path, documents: list[str]) -> dict[str, Any]:
    """One-pass accuracy at 50% noise on every example of ``documents``, with the checkpoint's tokenizer."""
    torch.manual_seed(0)
    model, tokenizer = load_checkpoint(checkpoint)
    canvas = model.config.canvas_length
    assert canvas is not None
    examples = build_examples(tokenizer, documents, training_budget(checkpoint), canvas)
    acc = one_pass_accuracy(model, examples, tokenizer.pad_token_id)
    return {"examples": len(examples), "renoised_positions": acc.noised, "accuracy": round(acc.value, 4)}


def figures(results: dict[str, Any]) -> dict[str, Any]:
    """The comparable numbers of an ``eval_results.json``."""
    dic = results.get("dictionary", {})
    out: dict[str, Any] = {
        "accuracy": results["model_accuracy"],
        "accuracy_examples": results.get("accuracy_examples", results["heldout_examples"]),
        "heldout_examples": results["heldout_examples"],
    }
    for key in ("heldout_documents", "heldout_source"):
        if key in dic:
            out[f"{key}_dictionary_word_rate"] = dic[key]["dictionary_word_rate"]
            out[f"{key}_words"] = dic[key]["words"]
            out[f"{key}_repetition"] = dic[key]["repetition"]
    return out


def same_evaluation(ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    """Whether two ``eval_results.json`` read the same held-out documents, draw and dictionary blocks."""

    def blocks(r: dict[str, Any]) -> list[Any]:
        dic = r.get("dictionary", {})
        counts = [dic.get(k, {}).get("blocks") for k in ("heldout_documents", "heldout_source")]
        return [*counts, dic.get("skipped_sweep_blocks", 0)]

    return (
        ours["heldout_documents"] == theirs["heldout_documents"]
        and ours.get("accuracy_examples") == theirs.get("accuracy_examples")
        and ours.get("accuracy_seed") == theirs.get("accuracy_seed")
        and blocks(ours) == blocks(theirs)
    )


def compare(
    checkpoint: Path,
    previous: Path,
    data_dir: Path,
    sources: tuple[str, ...] = PREVIOUS_SOURCES,
    previous_results: Path | None = None,
) -> dict[str, Any]:
    results_path = checkpoint / RESULTS_FILE
    if not results_path.is_file():
        raise SystemExit(f"{results_path} is missing: run diffedit.training.evaluate_demo on it first")
    ours = json.loads(results_path.read_text(encoding="utf-8"))
    heldout = corpus.read_documents(data_dir / "corpus" / "heldout.jsonl")
    docs = [d.text for d in heldout if d.origin in sources]
    if not docs:
        raise SystemExit(f"no held-out documents of {', '.join(sources)} in {data_dir / 'corpus'}")
    if previous_results is not None:
        theirs = json.loads(previous_results.read_text(encoding="utf-8"))
        if not same_evaluation(ours, theirs):
            raise SystemExit(
                f"{previous_results} did not read the same held-out documents, examples and blocks as "
                f"{results_path}: evaluate the previous checkpoint with the same --data, or leave "
                "--previous-results out"
            )
    else:
        theirs = evaluate(
            previous,
            data_dir,
            generations=0,
            dictionary_n=ours.get("dictionary", {}).get("heldout_documents", {}).get("blocks", 0),
            rewrites=0,
            accuracy_examples=ours.get("accuracy_examples"),
            dictionary_skip=ours.get("dictionary", {}).get("skipped_sweep_blocks", 0),
        )
    return {
        "previous": str(previous),
        "previous_split": {
            "sources": list(sources),
            "documents": len(docs),
            "previous": split_accuracy(previous, docs),
            "this": split_accuracy(checkpoint, docs),
        },
        "heldout_split": {
            "documents": ours["heldout_documents"],
            "previous": figures(theirs),
            "this": figures(ours),
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", type=Path, required=True, help="the new demo (evaluated already)")
    parser.add_argument("--previous", type=Path, default=DEMO_DIR, help="default: the bundled demo")
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--previous-sources", default=",".join(PREVIOUS_SOURCES))
    parser.add_argument(
        "--previous-results",
        type=Path,
        default=None,
        help="an eval_results.json of the previous checkpoint on the same --data (saves re-evaluating it)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--nice", type=int, default=10)
    args = parser.parse_args(argv)
    if args.checkpoint.resolve() == args.previous.resolve():
        raise SystemExit("--checkpoint and --previous are the same directory: compare two checkpoints")
    nice_to(args.nice)
    torch.set_num_threads(args.threads)
    sources = tuple(s for s in args.previous_sources.split(",") if s)
    out = compare(args.checkpoint, args.previous, args.data, sources, args.previous_results)
    (args.checkpoint / COMPARISON_FILE).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
