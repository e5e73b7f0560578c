"""A tiny training setup: a small corpus of prose paragraphs and a model shape that trains in seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from diffedit.training import corpus
from diffedit.training.corpus import Document
from diffedit.training.model_config import Shape
from diffedit.training.train_demo import TrainArgs

TINY = Shape(  # trains in seconds on one core
    vocab_size=600,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=32,
    global_head_dim=32,
    num_experts=2,
    top_k_experts=1,
    moe_intermediate_size=32,
    canvas_length=64,
)
SENTENCE = "The {w} file lists every mount that happens at boot, and each line of it names one device. "
WORDS = ("system", "config", "network", "package", "kernel", "user", "service", "archive")


def tiny_corpus(root: Path) -> Path:
    """A small corpus of prose paragraphs, as data/corpus holds one."""

    def doc(i: int) -> Document:
        paragraphs = [SENTENCE.format(w=WORDS[(i + k) % len(WORDS)]) for k in range(6)]
        return Document(f"doc-{i}", "\n\n".join(p.strip() for p in paragraphs), "python")

    data = root / "data"
    (data / "corpus").mkdir(parents=True)
    corpus.write_jsonl(data / "corpus" / "train.jsonl", [doc(i) for i in range(24)])
    corpus.write_jsonl(data / "corpus" / "heldout.jsonl", [doc(i) for i in range(24, 30)])
    return data


def tiny_args(out: Path, data: Path, shape: str, **overrides: Any) -> TrainArgs:
    """A run of the tiny shape on ``data`` that keeps a snapshot every 10 steps, on one thread."""
    fields: dict[str, Any] = dict(batch_size=4, eval_every=10, eval_examples=8, budget=64, threads=1)
    return TrainArgs(out=out, shape=shape, data=data, snapshots=True, **{**fields, **overrides})
