"""Train the bundled demo model from scratch on 2 CPU cores.

    python -m diffedit.training.train_demo --out diffedit/resources/models/diffedit-demo

Steps: fetch and convert the corpus (``data/corpus``), train the BPE, build infill examples with the engine's
own prompt and canvas code, then train a small DiffusionGemma with the uniform-state diffusion objective:
per example ``t ~ U(0, 1]`` (stratified over the batch), that share of canvas positions replaced by uniform
random tokens, cross-entropy against the clean canvas. Self-conditioning on every other batch. The run is a
fixed number of steps with a fixed seed and data order, or, with ``--minutes``, as many steps of that order
as fit the time: the loop times its first steps and one evaluation, then fixes the schedule's length before
the warmup ends (for a lent GPU, where the minutes are what is given). ``--snapshots`` keeps the weights of
every evaluation under ``snapshots/step-N`` (``diffedit.training.pick_snapshot`` chooses among them).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import pickle
import random
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from transformers import DiffusionGemmaForBlockDiffusion
from transformers.cache_utils import DynamicCache

from diffedit.training import corpus
from diffedit.training.checkpoint import DEMO_DIR, save_checkpoint
from diffedit.training.examples import Example, build_examples
from diffedit.training.metrics import baseline_accuracy, most_frequent_token, one_pass_accuracy
from diffedit.training.model_config import SHAPES, Shape, build_config
from diffedit.training.tokenizer import save_tokenizer, train_bpe

DATA_DIR = Path("data")
CURVE_FILE = "training_curve.csv"
HELDOUT_SAMPLE_FILE = "heldout_sample.jsonl"
HELDOUT_SOURCE_SAMPLE_FILE = "heldout_source_sample.jsonl"  # blocks of the sources held out whole
RUN_FILE = "training_run.json"
SNAPSHOTS_DIR = "snapshots"
DATA_SEED = 0  # the example set and the evaluation subset do not depend on --seed


@dataclass(frozen=True)
class TrainArgs:
    out: Path
    steps: int = 2200
    batch_size: int = 16
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup: int = 150
    weight_decay: float = 0.01
    budget: int = 192
    seed: int = 0
    eval_every: int = 200
    eval_examples: int = 384
    kept_weight: float = 0.1
    pad_weight: float = 0.25
    threads: int = 2
    init_from: Path | None = None
    stop_after: int | None = None  # stop early, keeping the schedule of --steps (a phase cut short)
    device: str = "cpu"  # the noise and the data order are drawn on the CPU either way
    minutes: float | None = None  # fit the run to this wall time (steps then caps it)
    snapshots: bool = False  # keep every evaluation's weights under snapshots/step-N
    shape: str = "demo-1"  # a name in model_config.SHAPES
    data: Path = DATA_DIR


# ---------------------------------------------------------------- data


def load_corpus(
    data_dir: Path,
) -> tuple[list[corpus.Document], list[corpus.Document], list[corpus.Document]]:
    """Training, held-out and held-out-source documents (the last empty for a corpus without one)."""
    corpus_dir = data_dir / "corpus"
    if not (corpus_dir / "train.jsonl").is_file():
        corpus.main(["--out", str(corpus_dir)])
    return (
        corpus.read_documents(corpus_dir / "train.jsonl"),
        corpus.read_documents(corpus_dir / "heldout.jsonl"),
        corpus.read_documents(corpus_dir / "heldout_source.jsonl", missing_ok=True),
    )


def cached_examples(
    path: Path, tokenizer: Any, docs: Sequence[corpus.Document], args: TrainArgs, canvas_length: int
) -> list[Example]:
    key = f"{len(docs)}-{sum(len(d.text) for d in docs)}-{args.budget}-{canvas_length}-{len(tokenizer)}"
    if path.is_file():
        stored_key, examples = pickle.loads(path.read_bytes())
        if stored_key == key:
            return examples
    texts = [d.text for d in docs]
    workers = os.cpu_count() or 1  # before training starts: every core may encode
    examples = build_examples(tokenizer, texts, args.budget, canvas_length, seed=DATA_SEED, workers=workers)
    path.write_bytes(pickle.dumps((key, examples)))
    return examples


def write_heldout_sample(
    path: Path, docs: Sequence[corpus.Document], count: int = 60, context_chars: int = 1500, seed: int = 7
) -> None:
    """A small committed sample of held-out (prefix, target, suffix) splits for the tests."""
    from diffedit.training.examples import candidate_splits

    rng = random.Random(seed)
    splits = [
        (d.source, s) for d in docs for s in candidate_splits(d.text, rng) if 40 <= len(s.target) <= 450
    ]
    rng.shuffle(splits)
    with path.open("w", encoding="utf-8") as f:
        for source, s in splits[:count]:
            row = {
                "source": source,
                "prefix": s.prefix[-context_chars:],
                "target": s.target,
                "suffix": s.suffix[:context_chars],
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def epoch_batches(examples: Sequence[Example], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of equal-length prompts (no padding needed); leftovers form smaller batches."""
    by_len: dict[int, list[int]] = {}
    for i, ex in enumerate(examples):
        by_len.setdefault(len(ex.prompt), []).append(i)
    batches: list[list[int]] = []
    for length in sorted(by_len):
        idx = by_len[length]
        rng.shuffle(idx)
        batches += [idx[j : j + batch_size] for j in range(0, len(idx), batch_size)]
    rng.shuffle(batches)
    return batches


def batch_stream(examples: Sequence[Example], batch_size: int, seed: int) -> Iterator[list[int]]:
    rng = random.Random(seed)
    while True:
        yield from epoch_batches(examples, batch_size, rng)


# ---------------------------------------------------------------- objective


def sample_t(batch: int, gen: torch.Generator) -> torch.Tensor:
    """Noise levels in (0, 1], stratified so every batch covers the whole range."""
    u = (torch.randperm(batch, generator=gen) + torch.rand(batch, generator=gen)) / batch
    return 1.0 - u


def corrupt(
    clean: torch.Tensor, t: torch.Tensor, vocab: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace a ``t`` share of each row's positions with uniform random tokens: (noised, noise mask)."""
    mask = torch.rand(clean.shape, generator=gen) < t[:, None]
    noise = torch.randint(0, vocab, clean.shape, generator=gen)
    return torch.where(mask, noise, clean), mask


def position_weights(clean: torch.Tensor, mask: torch.Tensor, pad_id: int, args: TrainArgs) -> torch.Tensor:
    """Noised positions count fully; kept ones a little (they teach trusting correct tokens); pad less."""
    w = torch.where(mask, 1.0, args.kept_weight)
    return torch.where(clean == pad_id, w * args.pad_weight, w)


def diffusion_loss(logits: torch.Tensor, clean: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), clean.reshape(-1), reduction="none")
    return (ce * weights.reshape(-1)).sum() / weights.sum()


def new_cache(model: DiffusionGemmaForBlockDiffusion) -> DynamicCache:
    return DynamicCache(config=model.config.get_text_config(decoder=True))


def self_conditioning_logits(
    model: DiffusionGemmaForBlockDiffusion, prompts: torch.Tensor, noised: torch.Tensor
) -> torch.Tensor:
    """A first estimate of the clean canvas, without gradients, fed back as self-conditioning."""
    with torch.no_grad():
        return model(input_ids=prompts, cache=new_cache(model), decoder_input_ids=noised).logits


def training_step(
    model: DiffusionGemmaForBlockDiffusion,
    examples: Sequence[Example],
    batch: list[int],
    use_self_cond: bool,
    gen: torch.Generator,
    args: TrainArgs,
) -> tuple[torch.Tensor, int]:
    prompts = torch.tensor([examples[i].prompt for i in batch])
    clean = torch.tensor([examples[i].canvas for i in batch])
    vocab = model.config.get_text_config().vocab_size
    noised, mask = corrupt(clean, sample_t(len(batch), gen), vocab, gen)
    dev = torch.device(args.device)
    prompts, clean, noised, mask = (t.to(dev) for t in (prompts, clean, noised, mask))
    sc_logits = sc_mask = None
    if use_self_cond:
        sc_logits = self_conditioning_logits(model, prompts, noised)
        sc_mask = torch.ones(len(batch), dtype=torch.bool, device=dev)
    out = model(
        input_ids=prompts,
        cache=new_cache(model),
        decoder_input_ids=noised,
        self_conditioning_logits=sc_logits,
        self_conditioning_mask=sc_mask,
    )
    loss = diffusion_loss(out.logits, clean, position_weights(clean, mask, model.config.pad_token_id, args))
    return loss, prompts.numel() + clean.numel()


CALIBRATION_STEPS = 30  # steps timed (after the first 5) before a --minutes run fixes its length


def planned_steps(budget_s: float, spent_s: float, step_s: float, eval_s: float, args: TrainArgs) -> int:
    """The most steps (at most ``args.steps``) whose training and evaluations fit what is left of
    ``budget_s``: each step ``step_s``, an evaluation (with its save) ``eval_s`` every ``eval_every`` steps
    and one at the end. At least one step more than the timed ones."""
    left = budget_s - spent_s - eval_s  # the closing evaluation
    fit = math.floor(left / (step_s + eval_s / args.eval_every)) if left > 0 else 0
    return max(CALIBRATION_STEPS + 1, min(args.steps, fit))


def lr_at(step: int, args: TrainArgs) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * cosine)


def make_optimizer(model: torch.nn.Module, args: TrainArgs) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "vision" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 and "vision" not in n]
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.98), eps=1e-8)


# ---------------------------------------------------------------- loop


def progress_line(step: int, total: int, loss: float, tok_s: float, elapsed: float) -> str:
    done = int(30 * step / total)
    eta = elapsed / max(1, step) * (total - step)
    return (
        f"[{'#' * done}{'.' * (30 - done)}] {step}/{total} loss {loss:.3f} "
        f"{tok_s:,.0f} tok/s elapsed {elapsed / 60:.1f} min eta {eta / 60:.1f} min"
    )


def append_curve(path: Path, row: dict[str, Any]) -> None:
    new = not path.is_file()
    with path.open("a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


@dataclass
class Data:
    tokenizer: Any
    train: list[Example]
    heldout: list[Example]
    eval: list[Example]
    heldout_docs: list[corpus.Document]
    heldout_source_docs: list[corpus.Document]


def prepare_data(args: TrainArgs, shape: Shape) -> Data:
    data_dir = args.data
    data_dir.mkdir(exist_ok=True)
    train_docs, heldout_docs, other_docs = load_corpus(data_dir)
    bpe = train_bpe((d.text for d in train_docs), shape.vocab_size)
    tokenizer = save_tokenizer(bpe, data_dir / "tokenizer")
    canvas_length = shape.canvas_length
    train_ex = cached_examples(data_dir / "train_examples.pkl", tokenizer, train_docs, args, canvas_length)
    heldout_ex = cached_examples(
        data_dir / "heldout_examples.pkl", tokenizer, heldout_docs, args, canvas_length
    )
    eval_ex = random.Random(DATA_SEED).sample(heldout_ex, min(args.eval_examples, len(heldout_ex)))
    return Data(tokenizer, train_ex, heldout_ex, eval_ex, list(heldout_docs), list(other_docs))


def init_model(args: TrainArgs, shape: Shape) -> DiffusionGemmaForBlockDiffusion:
    """A fresh model, or (for a second training phase) the weights of an earlier run's checkpoint."""
    if args.init_from is not None:
        return DiffusionGemmaForBlockDiffusion.from_pretrained(str(args.init_from), dtype=torch.float32)
    return DiffusionGemmaForBlockDiffusion(build_config(shape))


def previous_phases(args: TrainArgs) -> list[dict[str, Any]]:
    """The summaries of the runs this one continues (empty for a run from scratch)."""
    if args.init_from is None:
        return []
    run = json.loads((args.init_from / RUN_FILE).read_text(encoding="utf-8"))
    return [*run.get("previous_phases", []), {k: v for k, v in run.items() if k != "previous_phases"}]


def steps_run(args: dict[str, str]) -> int:
    stop = args.get("stop_after", "None")
    return int(args["steps"]) if stop in (None, "None") else min(int(args["steps"]), int(stop))


def batches_seen(phases: list[dict[str, Any]], args: TrainArgs) -> int:
    """How many batches of this run's data order the earlier phases consumed: their steps, when they drew
    from the same order (same seed and batch size), else 0 (a different order: nothing to skip)."""
    same = all(
        p["args"].get("seed") == str(args.seed) and p["args"].get("batch_size") == str(args.batch_size)
        for p in phases
    )
    return sum(steps_run(p["args"]) for p in phases) if phases and same else 0


def train(args: TrainArgs) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    shape = SHAPES[args.shape]
    data = prepare_data(args, shape)
    pad_id = data.tokenizer.pad_token_id
    frequent = most_frequent_token(data.train, pad_id)
    base = baseline_accuracy(data.eval, frequent, pad_id, shape.vocab_size)
    print(
        f"{len(data.train)} train / {len(data.heldout)} held-out examples; baseline (token {frequent!r}) "
        f"{base.value:.4f}",
        flush=True,
    )
    phases = previous_phases(args)
    step_offset = sum(steps_run(p["args"]) for p in phases)
    args.out.mkdir(parents=True, exist_ok=True)
    write_heldout_sample(args.out / HELDOUT_SAMPLE_FILE, data.heldout_docs)
    if data.heldout_source_docs:
        write_heldout_sample(args.out / HELDOUT_SOURCE_SAMPLE_FILE, data.heldout_source_docs)
    curve = args.out / CURVE_FILE
    if not phases:
        curve.unlink(missing_ok=True)
    elif args.init_from is not None and args.init_from.resolve() != args.out.resolve():
        shutil.copyfile(args.init_from / CURVE_FILE, curve)
    model = init_model(args, shape)
    model.to(torch.device(args.device))  # type: ignore[arg-type]  # transformers' wrapped .to
    model.train()
    print(f"model: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters", flush=True)
    optimizer = make_optimizer(model, args)
    skipped = batches_seen(phases, args)
    # A later phase goes on where the data order left off (and draws fresh noise), so it sees new examples.
    gen = torch.Generator().manual_seed(args.seed + step_offset)
    stream = batch_stream(data.train, args.batch_size, args.seed)
    for _ in range(skipped):
        next(stream)
    if skipped:
        print(f"skipped the {skipped} batches earlier phases trained on", flush=True)
    start = time.time()
    tokens = 0
    smooth = None
    requested = args.steps
    if args.minutes is not None and args.warmup < CALIBRATION_STEPS:
        raise SystemExit(f"--minutes needs --warmup of at least {CALIBRATION_STEPS} (the steps it times)")
    last = min(args.steps, args.stop_after or args.steps)
    timed_from = 0.0
    step = 0
    while step < last:
        if step == 5:
            timed_from = time.time()
        if args.minutes is not None and step == CALIBRATION_STEPS:
            step_s = (time.time() - timed_from) / (CALIBRATION_STEPS - 5)
            eval_start = time.time()
            one_pass_accuracy(model, data.eval, pad_id)
            save_checkpoint(model, data.tokenizer, args.out, context_tokens=args.budget)
            eval_s = time.time() - eval_start
            args = replace(
                args, steps=planned_steps(args.minutes * 60, time.time() - start, step_s, eval_s, args)
            )
            last = min(args.steps, args.stop_after or args.steps)
            print(
                f"timed {step_s:.3f} s a step, {eval_s:.1f} s an evaluation: {args.steps} steps fit "
                f"{args.minutes:g} minutes",
                flush=True,
            )
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, args)
        loss, n_tok = training_step(model, data.train, next(stream), step % 2 == 1, gen, args)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        tokens += n_tok
        smooth = loss.item() if smooth is None else 0.95 * smooth + 0.05 * loss.item()
        elapsed = time.time() - start
        if (step + 1) % 10 == 0:
            print(progress_line(step + 1, args.steps, smooth, tokens / elapsed, elapsed), flush=True)
        if (step + 1) % args.eval_every == 0 or step + 1 == last:
            acc = one_pass_accuracy(model, data.eval, pad_id)
            row = {
                "step": step_offset + step + 1,
                "loss": round(smooth, 4),
                "heldout_acc": round(acc.value, 4),
                "baseline_acc": round(base.value, 4),
                "lr": round(lr_at(step, args), 6),
                "elapsed_min": round((time.time() - start) / 60, 2),
            }
            append_curve(curve, row)
            print("EVAL " + json.dumps(row), flush=True)
            if args.snapshots:  # saved once, then copied over the run's own checkpoint files
                snapshot = args.out / SNAPSHOTS_DIR / f"step-{step_offset + step + 1}"
                save_checkpoint(model, data.tokenizer, snapshot, context_tokens=args.budget)
                shutil.copytree(snapshot, args.out, dirs_exist_ok=True)
            else:
                save_checkpoint(model, data.tokenizer, args.out, context_tokens=args.budget)
        step += 1
    summary = {
        "args": {k: str(v) for k, v in asdict(args).items()},
        "shape": asdict(shape),
        "wall_time_min": round((time.time() - start) / 60, 1),
        "train_examples": len(data.train),
        "heldout_examples": len(data.heldout),
        "argv": sys.argv,
        "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "previous_phases": phases,
        "skipped_batches": skipped,
        "requested_steps": requested,
    }
    (args.out / RUN_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print("done " + json.dumps(summary), flush=True)


def parse_args(argv: list[str] | None = None) -> TrainArgs:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    defaults = TrainArgs(out=DEMO_DIR)
    parser.add_argument("--out", type=Path, default=defaults.out)
    for name in ("steps", "batch_size", "warmup", "budget", "seed", "eval_every", "eval_examples", "threads"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    parser.add_argument("--device", default=defaults.device, help="cpu (default) or cuda")
    parser.add_argument("--shape", default=defaults.shape, choices=sorted(SHAPES), help="model shape")
    parser.add_argument("--data", type=Path, default=defaults.data, help="data folder (default data)")
    for name in ("lr", "min_lr_ratio", "weight_decay", "kept_weight", "pad_weight"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(defaults, name))
    parser.add_argument("--stop-after", type=int, default=None, help="stop after this many steps")
    parser.add_argument(
        "--minutes", type=float, default=None, help="fit the run to this wall time (--steps caps it)"
    )
    parser.add_argument(
        "--snapshots", action="store_true", help="keep every evaluation's weights under snapshots/step-N"
    )
    parser.add_argument(
        "--init-from", type=Path, default=None, help="continue from this checkpoint's weights"
    )
    return TrainArgs(**vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> None:
    train(parse_args(argv))


if __name__ == "__main__":
    main()
