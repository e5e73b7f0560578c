"""Evaluate the demo checkpoint on the held-out split (documents never seen in training).

    python -m diffedit.training.evaluate_demo [--checkpoint diffedit/resources/models/diffedit-demo]

Metric: re-noise 50% of the non-pad positions of each held-out target's canvas with uniform random tokens
(the rest kept, context on both sides given) and count the share restored exactly by the argmax of ONE
forward pass. Baseline: always answering the most frequent token of the training targets' canvases.
Also times ``model.generate`` on a few held-out paragraphs and keeps their full regenerations, measures
the dictionary-word rate and repetition (:mod:`diffedit.training.text_metrics`) of rewrites through
``Engine.rewrite`` with the checkpoint's own generation config, on prose blocks of the held-out documents
and of the sources held out whole (text not from the training corpus), and keeps ``--rewrites`` verbatim
before/after rewrites chosen by a fixed seed (``REWRITE_SEED``), never by hand.
Writes ``eval_results.json`` next to the weights.
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, DiffusionGemmaForBlockDiffusion

from diffedit.engine.canvas import trim_at_end
from diffedit.engine.context import InfillFormat
from diffedit.engine.types import EditRequest
from diffedit.training import corpus
from diffedit.training.checkpoint import DEMO_DIR
from diffedit.training.examples import Example, Split, build_examples, encode_split
from diffedit.training.metrics import baseline_accuracy, most_frequent_token, one_pass_accuracy
from diffedit.training.niceness import nice_to

RESULTS_FILE = "eval_results.json"
DEFAULT_BUDGET = 192
REWRITE_SEED = 14  # which held-out blocks the card shows: random.Random(REWRITE_SEED), not a hand pick
ACCURACY_SEED = 0  # which held-out examples the one-pass accuracy reads when they are capped


@dataclass(frozen=True)
class Regeneration:
    original: str
    generated: str
    seconds: float


def load_checkpoint(path: Path) -> tuple[DiffusionGemmaForBlockDiffusion, Any]:
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = DiffusionGemmaForBlockDiffusion.from_pretrained(str(path), dtype=torch.float32).eval()
    return model, tokenizer


def training_budget(path: Path) -> int:
    run = path / "training_run.json"
    if run.is_file():
        return int(json.loads(run.read_text(encoding="utf-8"))["args"]["budget"])
    return DEFAULT_BUDGET


def read_sample(path: Path) -> list[Split]:
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [Split(r["prefix"], r["target"], r["suffix"]) for r in rows]


def encode_splits(tokenizer: Any, splits: Sequence[Split], budget: int, canvas_length: int) -> list[Example]:
    fmt = InfillFormat()
    encoded = (encode_split(tokenizer, fmt, s, budget, canvas_length) for s in splits)
    return [ex for ex in encoded if ex is not None]


def train_target_examples(tokenizer: Any, budget: int, canvas_length: int, data_dir: Path) -> list[Example]:
    """The training examples (cached by the training run if present), for the baseline's token."""
    cache = data_dir / "train_examples.pkl"
    if cache.is_file():
        key, examples = pickle.loads(cache.read_bytes())
        # train_demo's key ends "-budget-canvas-vocabulary": another tokenizer's ids would pick a wrong token
        if str(key).endswith(f"-{budget}-{canvas_length}-{len(tokenizer)}"):
            return list(examples)
    docs = corpus.read_documents(data_dir / "corpus" / "train.jsonl")
    return build_examples(tokenizer, [d.text for d in docs], budget, canvas_length)


def accuracy_subset(examples: Sequence[Example], limit: int | None) -> list[Example]:
    """All ``examples``, or ``limit`` of them drawn by ``ACCURACY_SEED`` (never by hand) if there are more."""
    import random

    if limit is None or limit >= len(examples):
        return list(examples)
    return random.Random(ACCURACY_SEED).sample(list(examples), limit)


def regenerate(
    model: DiffusionGemmaForBlockDiffusion, tokenizer: Any, split: Split, budget: int, seed: int = 0
) -> Regeneration:
    """Full regeneration of the target from random noise with the checkpoint's own sampler settings."""
    prompt = (
        InfillFormat()
        .build(tokenizer, EditRequest(split.prefix, split.target, split.suffix), budget)
        .input_ids
    )
    torch.manual_seed(seed)
    start = time.perf_counter()
    out = model.generate(torch.tensor([prompt]), max_new_tokens=model.config.canvas_length)
    seconds = time.perf_counter() - start
    ids = trim_at_end(out.sequences[0, len(prompt) :], {tokenizer.eos_token_id, tokenizer.pad_token_id})
    return Regeneration(split.target, tokenizer.decode(ids), seconds)


def dictionary_figures(
    checkpoint: Path,
    data_dir: Path,
    n: int,
    rewrites: int,
    words_file: Path,
    free_form: bool = False,
    skip: int = 0,
) -> dict[str, Any]:
    """Dictionary-word rate and repetition of ``n`` rewrites per held-out set, and ``rewrites`` of them
    (chosen by ``REWRITE_SEED``) verbatim. The checkpoint's generation config decides the sampler; the
    rewrites keep each block's shape as the editor's do, unless ``free_form``. The held-out documents' blocks
    start after the first ``skip`` (those the sampling sweep chose on)."""
    import random
    import statistics

    from diffedit.engine.engine import Engine
    from diffedit.engine.types import GenerationSettings
    from diffedit.training.heldout_sets import load_sets, reference_score, rewrite_split
    from diffedit.training.text_metrics import dictionary_word_rate, load_words, repetition

    words = load_words(words_file)
    engine = Engine.load(checkpoint, device="cpu")
    sets = load_sets(checkpoint, data_dir, n, skip)
    names = {"selection": "heldout_documents", "heldout_source": "heldout_source"}
    path = "free form" if free_form else "shaped"
    out: dict[str, Any] = {"words_file": str(words_file), "rewrite_path": path, "skipped_sweep_blocks": skip}
    pool: list[dict[str, str]] = []
    for key, splits in sets.items():
        texts = []
        for i, s in enumerate(splits):
            text, _ = rewrite_split(engine, s, GenerationSettings(seed=i), free_form)
            texts.append(text)
            pool.append({"set": names[key], "original": s.target, "rewritten": text})
        count = dictionary_word_rate(texts, words)
        out[names[key]] = {
            "blocks": len(splits),
            "dictionary_word_rate": round(count.rate, 4),
            "words": count.total,
            "repetition": round(statistics.fmean(repetition(t) for t in texts), 4) if texts else None,
            "original": reference_score(splits, words),
        }
    picked = random.Random(REWRITE_SEED).sample(range(len(pool)), min(rewrites, len(pool)))
    out["rewrites"] = [pool[i] for i in sorted(picked)]
    out["rewrite_seed"] = REWRITE_SEED
    return out


def cpu_name() -> str:
    """The processor's model name (Linux), for the timings' sake; "unknown CPU" elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def evaluate(
    checkpoint: Path,
    data_dir: Path,
    generations: int,
    dictionary_n: int = 0,
    rewrites: int = 10,
    words_file: Path | None = None,
    accuracy_examples: int | None = None,
    free_form: bool = False,
    dictionary_skip: int | None = None,
) -> dict[str, Any]:
    """``dictionary_skip``: held-out document blocks to pass over before the dictionary blocks (default: as
    many as the checkpoint's own sampling sweep and snapshot choice read, so the figure is not read on
    them)."""
    torch.manual_seed(0)
    model, tokenizer = load_checkpoint(checkpoint)
    budget = training_budget(checkpoint)
    canvas = model.config.canvas_length
    assert canvas is not None
    docs = corpus.read_documents(data_dir / "corpus" / "heldout.jsonl")
    all_heldout = build_examples(tokenizer, [d.text for d in docs], budget, canvas)
    heldout = accuracy_subset(all_heldout, accuracy_examples)
    pad = tokenizer.pad_token_id
    token = most_frequent_token(train_target_examples(tokenizer, budget, canvas, data_dir), pad)
    acc = one_pass_accuracy(model, heldout, pad)
    base = baseline_accuracy(heldout, token, pad, model.config.get_text_config().vocab_size)
    sample = read_sample(checkpoint / "heldout_sample.jsonl")
    regens = [regenerate(model, tokenizer, s, budget, seed=i) for i, s in enumerate(sample[:generations])]
    extra: dict[str, Any] = {}
    if dictionary_n > 0:
        from diffedit.training.heldout_sets import selection_blocks_used
        from diffedit.training.text_metrics import WORDS_FILE

        skip = selection_blocks_used(checkpoint) if dictionary_skip is None else dictionary_skip
        extra["dictionary"] = dictionary_figures(
            checkpoint, data_dir, dictionary_n, rewrites, words_file or WORDS_FILE, free_form, skip
        )
    return {
        "heldout_documents": len(docs),
        "heldout_examples": len(all_heldout),
        "accuracy_examples": len(heldout),
        "accuracy_seed": ACCURACY_SEED,
        "noise_fraction": 0.5,
        "renoised_positions": acc.noised,
        "model_accuracy": round(acc.value, 4),
        "baseline_token": tokenizer.convert_ids_to_tokens(token),
        "baseline_accuracy": round(base.value, 4),
        "ratio": round(acc.value / base.value, 2),
        "generate_median_s": round(statistics.median(r.seconds for r in regens), 3) if regens else None,
        "generate_seconds": [round(r.seconds, 3) for r in regens],
        "torch_threads": torch.get_num_threads(),
        "cpu": cpu_name(),
        "regenerations": [{"original": r.original, "generated": r.generated} for r in regens],
        **extra,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", type=Path, default=DEMO_DIR)
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--generations", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--dictionary-n", type=int, default=40, help="rewrites per held-out set for the dictionary-word rate"
    )
    parser.add_argument(
        "--accuracy-examples",
        type=int,
        default=2000,
        help="held-out examples for the one-pass accuracy, drawn by a fixed seed (0: all; default 2000)",
    )
    parser.add_argument("--rewrites", type=int, default=10, help="verbatim before/after rewrites kept")
    parser.add_argument(
        "--free-form",
        action="store_true",
        help="rewrite without keeping each block's shape (the editor's Free form), not as the editor does",
    )
    parser.add_argument("--words", type=Path, default=None, help="word list (default /usr/share/dict/words)")
    parser.add_argument("--nice", type=int, default=10)
    args = parser.parse_args(argv)
    nice_to(args.nice)
    torch.set_num_threads(args.threads)
    results = evaluate(
        args.checkpoint,
        args.data,
        args.generations,
        args.dictionary_n,
        args.rewrites,
        args.words,
        args.accuracy_examples or None,
        args.free_form,
    )
    (args.checkpoint / RESULTS_FILE).write_text(
        json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    summary = {k: v for k, v in results.items() if k not in ("regenerations", "dictionary")}
    if "dictionary" in results:
        summary["dictionary"] = {k: v for k, v in results["dictionary"].items() if k != "rewrites"}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
