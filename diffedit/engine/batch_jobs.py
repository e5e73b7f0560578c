"""Jobs run as one batch of canvases (:mod:`diffedit.engine.batch`): alternatives and multi-block rewrites.

* **Alternatives.** ``count`` candidates of one job: every row reads the job's one prompt (encoded once) and
  carries the job's plan (the same held text, bands and forbidden tokens: block-true constraints apply to
  every candidate). Row ``r`` draws from its own generator seeded ``seed + r`` (:func:`row_seeds`), so the
  run's seed reproduces every candidate; candidate ``r`` alone is the single rewrite with seed ``seed + r``
  wherever the batched forward computes each row's logits as the single forward does (the rows share one
  context, unpadded: bit for bit on the CPU, tested; on GPUs batched kernels may round differently, so a
  candidate's own seed is then close to, not always equal to, its batched self).
* **Multi-block rewrites.** A shape-true job of several blocks becomes one row per block. Row ``k`` is the
  rewrite of block ``k`` alone: its prompt is the document with block ``k`` as the target and every other
  block, the other selected blocks included, as originally written (so the blocks are written in parallel,
  none reading another's rewrite). Rows' prompts differ in length: the shorter contexts are left-padded
  and masked in the batch. Block after block (each block reading the blocks rewritten before it) remains for
  one block, free form, reference mode, and ``RewriteJob.batch_blocks=False``
  (:func:`diffedit.engine.types.batches_blocks`).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from diffedit.engine.batch import BatchOutcome, BatchRow, denoise_batch, row_seeds
from diffedit.engine.denoise import StepView
from diffedit.engine.types import (
    MAX_ALTERNATIVES,
    AlternativesFrame,
    AlternativesResult,
    BlockTemplate,
    EditRequest,
    Frame,
    HeldText,
    RewriteJob,
    RewriteResult,
    SettingsError,
)

if TYPE_CHECKING:
    from diffedit.engine.engine import Engine


def alternatives(
    engine: Engine,
    job: RewriteJob,
    count: int,
    on_frame: Callable[[AlternativesFrame], None] | None = None,
    cancel: Any = None,
    frame_interval_s: float = 0.0,
) -> AlternativesResult:
    """``count`` candidates of ``job`` as one batch over one encoded context."""
    if not 1 <= count <= MAX_ALTERNATIVES:
        raise SettingsError(f"alternatives must be from 1 to {MAX_ALTERNATIVES} (got {count})")
    started = time.perf_counter()
    seed, prompt, target_ids, plan = engine.prepare(job)
    options = engine.options_for(job, target_ids, frame_interval_s, plan)
    seeds = row_seeds(seed, count)
    rows = [BatchRow(tuple(prompt.input_ids), options, _generator(engine, s)) for s in seeds]
    frames = None
    if on_frame is not None:

        def emit(built: Sequence[Frame | None], final: bool) -> None:
            on_frame(AlternativesFrame(job.job_id, tuple(built), final))

        frames = _RowFrames(engine, job.job_id, count, frame_interval_s, emit)
    with engine.failures():
        batch = denoise_batch(engine.model, rows, frames, cancel)
    candidates = tuple(
        engine.result_of(_seeded(job, s), plan, row, s, prompt.truncated, started)
        for s, row in zip(seeds, batch.rows, strict=True)
    )
    if frames is not None:
        frames.final([c.text for c in candidates])
    return AlternativesResult(
        job.job_id, seed, candidates, batch.forwards, batch.encodes, time.perf_counter() - started
    )


def block_jobs(job: RewriteJob) -> tuple[list[tuple[str, RewriteJob]], str] | None:
    """Each block's own job (the document around it as it is), with the text before it in the span, and the
    span's text after the last block; None where the templates do not spell the span out."""
    if job.templates is None:
        return None
    request, target = job.request, job.request.target
    out: list[tuple[str, RewriteJob]] = []
    pos = 0
    for template in job.templates:
        text = "".join(s.text if isinstance(s, HeldText) else s.original for s in template.segments)
        gap = template.gap_before
        if target[pos : pos + len(gap)] != gap or target[pos + len(gap) : pos + len(gap) + len(text)] != text:
            return None
        pos += len(gap)
        own = EditRequest(
            request.prefix + target[:pos],
            text,
            target[pos + len(text) :] + request.suffix,
            request.instruction,
        )
        block = BlockTemplate(template.kind, template.segments, "")
        out.append((gap, RewriteJob(own, job.settings, job.job_id, (block,), batch_blocks=False)))
        pos += len(text)
    return out, target[pos:]


def rewrite_blocks_batched(
    engine: Engine,
    job: RewriteJob,
    on_frame: Callable[[Frame], None] | None = None,
    cancel: Any = None,
    frame_interval_s: float = 0.0,
) -> RewriteResult:
    """A multi-block job with its blocks as one batch (see the module's docstring); its result reads as the
    block-after-block job's: the blocks' slots in order, the text with the gaps between them."""
    split = block_jobs(job)
    if split is None:
        sequential = dataclasses.replace(job, batch_blocks=False)
        return engine.rewrite(sequential, on_frame, cancel, frame_interval_s)
    parts, after = split
    started = time.perf_counter()
    seed = job.settings.seed
    prepared = [engine.prepare(j) for _, j in parts]
    seed = prepared[0][0] if seed is None else seed
    seeds = row_seeds(seed, len(parts))
    rows = []
    for (_, j), (_, prompt, target_ids, plan), s in zip(parts, prepared, seeds, strict=True):
        rows.append(
            BatchRow(
                tuple(prompt.input_ids),
                engine.options_for(j, target_ids, frame_interval_s, plan),
                _generator(engine, s),
            )
        )
    gaps = [gap for gap, _ in parts]
    originals = [j.request.target for _, j in parts]
    frames = None
    if on_frame is not None:

        def emit(built: Sequence[Frame | None], final: bool) -> None:
            on_frame(_joined(job.job_id, gaps, originals, after, built))

        frames = _RowFrames(engine, job.job_id, len(parts), frame_interval_s, emit)
    with engine.failures():
        batch = denoise_batch(engine.model, rows, frames, cancel)
    results = [
        engine.result_of(_seeded(j, s), plan, row, s, prompt.truncated, started)
        for (_, j), (_, prompt, _, plan), s, row in zip(parts, prepared, seeds, batch.rows, strict=True)
    ]
    text = "".join(g + r.text for g, r in zip(gaps, results, strict=True)) + after
    result = _joined_result(job, results, batch, seed, text, started)
    if on_frame is not None:
        on_frame(dataclasses.replace(_joined(job.job_id, [], [], text, []), final=True))
    return result


def _joined_result(
    job: RewriteJob,
    results: list[RewriteResult],
    batch: BatchOutcome,
    seed: int,
    text: str,
    started: float,
) -> RewriteResult:
    written = round(sum(r.tokens_per_forward * r.steps for r in results))  # each row's tokens and ends
    return RewriteResult(
        job_id=job.job_id,
        text=text,
        token_ids=tuple(t for r in results for t in r.token_ids),
        steps=batch.forwards,
        canvases=sum(r.canvases for r in results),
        tokens_per_forward=written / max(1, batch.forwards),
        encode_ms=sum(r.encode_ms for r in results),
        step_ms_median=statistics.median(batch.step_s) * 1000 if batch.step_s else 0.0,
        total_s=time.perf_counter() - started,
        seed=seed,
        model=results[0].model,
        truncated_context=any(r.truncated_context for r in results),
        compiled=results[0].compiled,
        slots=tuple(s for r in results for s in r.slots),
        batched_rows=len(results),
    )


def _seeded(job: RewriteJob, seed: int) -> RewriteJob:
    return dataclasses.replace(job, settings=dataclasses.replace(job.settings, seed=seed))


def _generator(engine: Engine, seed: int) -> torch.Generator:
    return torch.Generator(device=engine.device).manual_seed(seed)


def _joined(
    job_id: int, gaps: Sequence[str], originals: Sequence[str], after: str, frames: Sequence[Frame | None]
) -> Frame:
    """The rows' frames as one frame of the whole span: each block's canvas after its gap (a block with no
    step yet shows its original text), token arrays concatenated with their spans moved."""
    text = ""
    ids: list[int] = []
    pieces: list[str] = []
    spans: list[tuple[int, int]] = []
    accepted: list[bool] = []
    changed: list[bool] = []
    entropy: list[float] = []
    step, total = 0, 0
    for gap, original, frame in zip(gaps, originals, frames, strict=True):
        text += gap
        if frame is None:
            text += original
            continue
        offset = len(text)
        ids += frame.token_ids
        pieces += frame.pieces
        spans += [(a + offset, b + offset) for a, b in frame.spans]
        accepted += frame.accepted
        changed += frame.changed
        entropy += frame.entropy
        text += frame.text
        step, total = max(step, frame.step), max(total, frame.total_steps)
    return Frame(
        job_id=job_id,
        canvas_index=0,
        step=step,
        total_steps=total,
        token_ids=tuple(ids),
        pieces=tuple(pieces),
        spans=tuple(spans),
        accepted=tuple(accepted),
        changed=tuple(changed),
        entropy=tuple(entropy),
        text=text + after,
    )


class _RowFrames:
    """A batch observer that builds each row's :class:`Frame` (as the single path does), at most once per
    ``interval_s``, and hands all rows' latest frames on together."""

    def __init__(
        self,
        engine: Engine,
        job_id: int,
        rows: int,
        interval_s: float,
        emit: Callable[[Sequence[Frame | None], bool], None],
    ) -> None:
        from diffedit.engine.engine import FrameBuilder

        self.builders = [FrameBuilder(engine, job_id) for _ in range(rows)]
        self.views: list[StepView | None] = [None] * rows
        self.frames: list[Frame | None] = [None] * rows
        self.fresh = [False] * rows
        self.interval_s = interval_s
        self.emit = emit
        self._last: float | None = None

    def __call__(self, views: Sequence[tuple[int, StepView]]) -> None:
        for row, view in views:
            self.views[row] = view
            self.fresh[row] = True
        now = time.perf_counter()
        if self._last is not None and now - self._last < self.interval_s:
            return
        self._last = now
        for row, latest in enumerate(self.views):
            if latest is not None and self.fresh[row]:
                self.frames[row] = self.builders[row].frame(latest, final=False)
                self.fresh[row] = False
        self.emit(self.frames, False)

    def final(self, texts: Sequence[str]) -> None:
        frames = [
            None if view is None else builder.frame(view, final=True, text=text)
            for builder, view, text in zip(self.builders, self.views, texts, strict=True)
        ]
        self.emit(frames, True)
