"""Batched canvases (engine/batch.py, engine/batch_jobs.py) on a real tiny checkpoint from disk: rows equal
the single-canvas loop where their arithmetic is the same, per-row constraints, per-row stop, seeds."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from diffedit.document.blocks import parse_blocks
from diffedit.engine.batch import BatchRow, denoise_batch, row_seeds
from diffedit.engine.constraints import RunPlan
from diffedit.engine.denoise import DenoiseOptions, StepView, denoise
from diffedit.engine.engine import Engine
from diffedit.engine.types import GenerationSettings, RewriteJob
from diffedit.rewrites import assemble_blocks, build_job

DOC = "# Notes\n\nHello reader, here we go.\n\n## Part\n\n- an item\n\nThe end.\n"


@pytest.fixture(scope="module")
def engine(tiny_checkpoint: Path) -> Engine:
    return Engine.load(tiny_checkpoint)


@pytest.fixture(scope="module")
def demo_engine() -> Engine:
    return Engine.load(None, device="cpu")  # the bundled demo model, through the loader users run


def _block_job(index: int, seed: int = 0, doc: str = DOC) -> RewriteJob:
    block = parse_blocks(doc)[index]
    return build_job(doc, block.start, block.end, GenerationSettings(seed=seed))


def _row(engine: Engine, job: RewriteJob, seed: int, **sampler: float) -> tuple[BatchRow, DenoiseOptions]:
    _, prompt, target_ids, plan = engine.prepare(job)
    options = engine.options_for(job, target_ids, 0.0, plan)
    if sampler:
        options = dataclasses.replace(options, sampler=dataclasses.replace(options.sampler, **sampler))
    row = BatchRow(tuple(prompt.input_ids), options, torch.Generator().manual_seed(seed))
    return row, options


def _single(engine: Engine, row: BatchRow, seed: int) -> list[int]:
    out = denoise(engine.model, list(row.prompt_ids), row.options, torch.Generator().manual_seed(seed))
    return out.tokens


@pytest.mark.parametrize("free_form", [False, True])
def test_rows_over_one_context_equal_the_single_canvas_run_of_their_own_seed(
    engine: Engine, free_form: bool
) -> None:
    """On the CPU the batched forward computes each unpadded row's logits as the single forward does, and
    each row samples with its own generator: row r is exactly the single run with seed r."""
    block = parse_blocks(DOC)[1]
    job = build_job(DOC, block.start, block.end, GenerationSettings(), free_form=free_form)
    seeds = [11, 12, 13]
    rows = [_row(engine, job, s)[0] for s in seeds]
    batch = denoise_batch(engine.model, rows)
    assert batch.encodes == 1  # one context, encoded once
    for row, seed, outcome in zip(rows, seeds, batch.rows, strict=True):
        assert outcome.tokens == _single(engine, row, seed)
    assert len({tuple(o.tokens) for o in batch.rows}) > 1  # the rows are not copies of one another


def test_the_run_seed_reproduces_every_row(engine: Engine) -> None:
    job = _block_job(1)
    first = engine.alternatives(dataclasses.replace(job, settings=GenerationSettings(seed=42)), 3)
    again = engine.alternatives(dataclasses.replace(job, settings=GenerationSettings(seed=42)), 3)
    other = engine.alternatives(dataclasses.replace(job, settings=GenerationSettings(seed=43)), 3)
    assert [c.token_ids for c in first.candidates] == [c.token_ids for c in again.candidates]
    assert [c.seed for c in first.candidates] == row_seeds(42, 3) == [42, 43, 44]
    assert first.seed == 42
    # the run with seed 43 is the first run's rows moved by one: each row's stream is its own seed's
    assert [c.token_ids for c in other.candidates[:2]] == [c.token_ids for c in first.candidates[1:]]


def test_each_row_keeps_its_own_constraints(engine: Engine) -> None:
    """A heading, a list item and a paragraph in one batch: each row's held tokens at its own positions,
    none of its own forbidden tokens, and the held text of one row is not the other's."""
    jobs = [_block_job(i) for i in (0, 2, 3)]  # '# ' heading, '## ' heading, '- ' list item
    pairs = [_row(engine, job, 5 + i) for i, job in enumerate(jobs)]
    batch = denoise_batch(engine.model, [row for row, _ in pairs])
    plans: list[RunPlan] = [options.runs[0] for _, options in pairs]
    for plan, outcome in zip(plans, batch.rows, strict=True):
        tokens = outcome.runs_kept[0]
        for p, t in plan.held.items():
            if p < len(tokens):
                assert tokens[p] == t
        for first, stop, mask in plan.forbidden:
            for p in range(first, min(stop, len(tokens))):
                assert not bool(mask[tokens[p]])
    held = [{p: t for p, t in plan.held.items() if p < 3} for plan in plans]
    assert held[0] != held[1] != held[2]  # three different shapes were held, one per row
    for job, row_outcome in zip(jobs, batch.rows, strict=True):
        result = engine.result_of(job, engine.plan(job), row_outcome, 0, False, 0.0)
        (report,) = assemble_blocks(job, result).blocks
        assert report.same_shape and not report.kept_original


def test_a_row_that_is_done_leaves_the_batch_while_the_others_go_on(engine: Engine) -> None:
    """Rows with fewer steps finish first: a finished row takes no more steps (and shows no more frames),
    the batch runs as long as its slowest row, and every row still equals its single run."""
    job = _block_job(1)
    seeds = [1, 2, 3]
    rows = [_row(engine, job, s, max_steps=n)[0] for s, n in zip(seeds, (2, 8, 5), strict=True)]
    seen: dict[int, list[int]] = {}

    def observe(views: list[tuple[int, StepView]]) -> None:
        for row, view in views:
            seen.setdefault(row, []).append(view.step)

    batch = denoise_batch(engine.model, rows, observe)
    for r, outcome in enumerate(batch.rows):
        assert len(seen[r]) == outcome.forwards  # no frame after the row was done
        assert outcome.tokens == _single(engine, rows[r], seeds[r])
    assert [o.forwards // o.canvases for o in batch.rows] == [2, 8, 5]
    assert batch.forwards == sum(max(2, 8, 5) for _ in range(batch.waves))


def test_rows_that_settle_stop_changing_while_the_others_go_on(demo_engine: Engine) -> None:
    """On the trained demo model rows settle by the adaptive stop test at different steps."""
    text = "# Title\n\nA short paragraph to rewrite here.\n"
    block = parse_blocks(text)[1]
    # a calm sampler (the demo's shipped one is hot and runs every step): rows settle before the last step
    calm = GenerationSettings(steps=16, t_min=0.05, t_max=0.15, entropy_bound=0.3)
    job = build_job(text, block.start, block.end, calm, free_form=True)
    seeds = [0, 1, 2]
    rows = [_row(demo_engine, job, s)[0] for s in seeds]
    seen: dict[int, list[int]] = {}

    def observe(views: list[tuple[int, StepView]]) -> None:
        for row, view in views:
            seen.setdefault(row, []).append(view.step)

    batch = denoise_batch(demo_engine.model, rows, observe)
    steps = [o.forwards for o in batch.rows]
    assert len(set(steps)) > 1 and min(steps) < 16  # settled early, at different steps
    assert batch.forwards == max(steps)
    first = steps.index(min(steps))  # it left the batch early: no frame of it after its last step
    assert len(seen[first]) == steps[first] < len(seen[steps.index(max(steps))])
    # Not asserted here: its tokens equal its single run's. On the demo model that held bit for bit on an
    # AMD EPYC but not on an Intel Xeon (the token at canvas position 34 differs; plain linear layers give
    # identical rows there, so some batched kernel rounds differently: not traced). The bit-exact claim is
    # tested on the test checkpoint (test_rows_over_one_context_equal_the_single_canvas_run_of_their_own_seed)


def test_alternatives_are_one_batch_and_candidate_r_is_the_rewrite_with_seed_plus_r(engine: Engine) -> None:
    job = dataclasses.replace(_block_job(1), settings=GenerationSettings(seed=7))
    out = engine.alternatives(job, 3)
    assert out.encodes == 1
    assert out.forwards < sum(c.steps for c in out.candidates)  # batched, not three runs in sequence
    for r, candidate in enumerate(out.candidates):
        alone = engine.rewrite(dataclasses.replace(job, settings=GenerationSettings(seed=7 + r)))
        assert candidate.token_ids == alone.token_ids
        assert candidate.seed == 7 + r
        (report,) = assemble_blocks(job, candidate).blocks
        assert report.same_shape  # block-true constraints hold for every candidate


def test_a_multi_block_rewrite_runs_as_one_batch_and_keeps_its_blocks(engine: Engine) -> None:
    blocks = parse_blocks(DOC)
    job = build_job(DOC, blocks[1].start, blocks[4].end, GenerationSettings(seed=3))
    frames = []
    result = engine.rewrite(job, on_frame=frames.append)
    assert result.batched_rows == 4
    assembly = assemble_blocks(job, result)
    assert [b.kind for b in assembly.blocks] == [b.kind for b in blocks[1:5]]
    assert all(b.same_shape and not b.kept_original for b in assembly.blocks)
    new = DOC[: blocks[1].start] + assembly.text + DOC[blocks[4].end :]
    assert [b.kind for b in parse_blocks(new)] == [b.kind for b in blocks]
    assert frames[-1].final and frames[-1].text == result.text
    # block after block on request: the same blocks, written one after another
    sequential = engine.rewrite(dataclasses.replace(job, batch_blocks=False))
    assert sequential.batched_rows == 1
    assert [b.kind for b in assemble_blocks(job, sequential).blocks] == [b.kind for b in blocks[1:5]]


def test_each_block_row_reads_the_document_around_its_own_block(engine: Engine) -> None:
    """Row k is block k's own rewrite (the other blocks as written): where its context is the longest (so
    the batch pads it nowhere) it equals the one-block rewrite with seed + k exactly."""
    blocks = parse_blocks(DOC)
    job = build_job(DOC, blocks[1].start, blocks[4].end, GenerationSettings(seed=20))
    batched = engine.rewrite(job)
    singles = [engine.rewrite(_block_job(i, seed=20 + k)) for k, i in enumerate(range(1, 5))]
    lengths = [len(engine.prepare(_block_job(i))[1].input_ids) for i in range(1, 5)]
    slots = iter(batched.slots)
    per_block = [[next(slots) for _ in s.slots] for s in singles]
    same = [mine == [*single.slots] for mine, single in zip(per_block, singles, strict=True)]
    longest = [k for k, n in enumerate(lengths) if n == max(lengths)]
    assert all(same[k] for k in longest)
