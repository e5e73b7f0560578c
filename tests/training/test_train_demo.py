"""The training loop's bookkeeping for a run in phases: where a continuation picks up the data order."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from diffedit.training.examples import Example
from diffedit.training.train_demo import TrainArgs, batch_stream, batches_seen, steps_run


def phase(steps: int, seed: int = 0, batch_size: int = 16, stop_after: int | None = None) -> dict[str, Any]:
    """A previous phase as training_run.json records it (every argument as a string)."""
    return {
        "args": {
            "steps": str(steps),
            "seed": str(seed),
            "batch_size": str(batch_size),
            "stop_after": str(stop_after),
        }
    }


def args(seed: int = 0, batch_size: int = 16) -> TrainArgs:
    return TrainArgs(out=Path("unused"), seed=seed, batch_size=batch_size)


def test_a_first_phase_skips_nothing() -> None:
    assert batches_seen([], args()) == 0


def test_a_continuation_skips_every_batch_its_phases_trained_on() -> None:
    phases = [phase(1600), phase(1150, stop_after=400)]
    assert steps_run(phases[1]["args"]) == 400
    assert batches_seen(phases, args()) == 2000


def test_a_different_order_skips_nothing() -> None:
    assert batches_seen([phase(1600, seed=1)], args(seed=0)) == 0
    assert batches_seen([phase(1600, batch_size=8)], args(batch_size=16)) == 0


def test_skipping_continues_the_stream_where_the_first_phase_stopped() -> None:
    examples = [Example(prompt=[1] * (3 + i % 4), canvas=[2] * 8) for i in range(200)]
    whole = list(itertools.islice(batch_stream(examples, 16, seed=0), 30))
    resumed = batch_stream(examples, 16, seed=0)
    for _ in range(12):
        next(resumed)
    assert list(itertools.islice(resumed, 18)) == whole[12:]
    # 4 prompt lengths x 50 examples: an epoch is 16 batches, so the continuation's first 4 batches are the
    # rest of the first epoch: examples the first phase did not see
    first = {i for batch in whole[:12] for i in batch}
    rest = {i for batch in whole[12:16] for i in batch}
    assert first.isdisjoint(rest) and len(first | rest) == 200
