"""The training loop's bookkeeping: where a continuation picks up the data order, a run fitted to minutes,
snapshots."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from diffedit.engine.engine import Engine
from diffedit.training.examples import Example
from diffedit.training.train_demo import (
    CALIBRATION_STEPS,
    CURVE_FILE,
    RUN_FILE,
    SNAPSHOTS_DIR,
    TrainArgs,
    batch_stream,
    batches_seen,
    planned_steps,
    steps_run,
    train,
)
from tests.helpers.tiny_training import tiny_args, tiny_corpus


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


# ---------------------------------------------------------------- a run fitted to minutes, with snapshots


def test_planned_steps_fit_training_and_evaluations_into_the_budget() -> None:
    a = TrainArgs(out=Path("unused"), steps=10_000, eval_every=100)
    n = planned_steps(budget_s=600, spent_s=30, step_s=0.1, eval_s=5, args=a)
    # 565 s left after the closing evaluation; each step costs 0.1 s and a twentieth of an evaluation
    assert n == 3766
    assert n * 0.1 + (n / 100 + 1) * 5 + 30 <= 600 < (n + 1) * 0.1 + ((n + 1) / 100 + 1) * 5 + 30
    assert planned_steps(600, 30, 0.1, 5, TrainArgs(out=Path("unused"), steps=1000)) == 1000  # the cap
    assert planned_steps(10, 30, 0.1, 5, a) == CALIBRATION_STEPS + 1  # over budget: finish the step begun


def test_a_run_fitted_to_minutes_plans_its_length_and_keeps_every_evaluations_snapshot(
    tmp_path: Path, tiny_shape: str
) -> None:
    out = tmp_path / "run"
    run_args = tiny_args(
        out,
        tiny_corpus(tmp_path),
        tiny_shape,
        steps=10_000,
        warmup=CALIBRATION_STEPS,
        minutes=0.001,  # less than the timed steps take: the run ends at the first step after them
    )
    train(run_args)
    run = json.loads((out / RUN_FILE).read_text())
    assert run["requested_steps"] == 10_000 and run["args"]["steps"] == str(CALIBRATION_STEPS + 1)
    steps = [10, 20, 30, CALIBRATION_STEPS + 1]
    assert sorted(int(d.name.removeprefix("step-")) for d in (out / SNAPSHOTS_DIR).iterdir()) == steps
    curve = (out / CURVE_FILE).read_text().splitlines()
    assert [int(line.split(",")[0]) for line in curve[1:]] == steps
    # each snapshot is a whole checkpoint the editor's engine loads, and the last is the run's own weights
    last = out / SNAPSHOTS_DIR / f"step-{steps[-1]}"
    assert (last / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()
    assert Engine.load(out / SNAPSHOTS_DIR / "step-10", device="cpu").model.config.canvas_length == 64
    # a continuation of a fitted run skips the batches it actually trained on, not the ones requested
    assert batches_seen([run], run_args) == CALIBRATION_STEPS + 1
