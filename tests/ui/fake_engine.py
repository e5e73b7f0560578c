"""A test double with the engine's interface: deterministic frames, controllable speed, failures on demand."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from diffedit.engine.types import (
    AlternativesFrame,
    AlternativesResult,
    Cancelled,
    CancelToken,
    EngineError,
    Frame,
    FreeText,
    ModelLoadError,
    RewriteJob,
    RewriteResult,
    SlotOutcome,
    TokenReading,
)


def fake_rewrite_text(target: str, instruction: str = "", seed: int = 0) -> str:
    words = target.split()
    head = f"[{instruction}] " if instruction else ""
    return head + " ".join(w[::-1] for w in words) + f" ({seed})"


class FakeEngine:
    name = "fake-dg"
    device = "cpu"

    def __init__(
        self,
        step_delay_s: float = 0.01,
        fail_with: Exception | None = None,
        held: bool = False,
        seeds: Iterable[int] | None = None,
    ) -> None:
        self.step_delay_s = step_delay_s
        # A job without a seed gets the next of these, as the real engine draws one and reports it.
        self.seeds = iter(seeds) if seeds is not None else itertools.count(1)
        self.fail_with = fail_with
        # Held: every step waits for a permit, so a test can stop a run between two known steps.
        self.permits: threading.Semaphore | None = threading.Semaphore(0) if held else None
        self.free = threading.Event()
        self.jobs: list[RewriteJob] = []
        self.results: list[RewriteResult] = []
        self.steps_done = 0
        self.inspect_delay_s = 0.005
        self.inspected = 0

    def allow(self, steps: int = 1) -> None:
        assert self.permits is not None
        for _ in range(steps):
            self.permits.release()

    def release(self) -> None:
        """Run freely from now on."""
        self.free.set()

    def inspect(
        self,
        request: object,
        top_k: int = 5,
        context_tokens: int = 1024,
        cancel: CancelToken | None = None,
    ) -> tuple[TokenReading, ...]:
        """One reading per word (and the space before it), p from the word's length; ``inspect_delay_s``
        per call, so a test sees the reading arrive chunk by chunk."""
        import re

        target = str(getattr(request, "target", ""))
        time.sleep(self.inspect_delay_s)
        self.inspected += 1
        if cancel is not None and cancel.cancelled:
            raise Cancelled()
        out, done = [], 0
        for m in re.finditer(r"\s*\S+", target):
            p = 1.0 / (1 + len(m.group().strip()) % 7)
            out.append(TokenReading(0, done, m.end(), p, 1.0 - p, (("alt", 0.1),)))
            done = m.end()
        if out and done < len(target):
            last = out[-1]
            out[-1] = TokenReading(0, last.start, len(target), last.p, last.entropy, last.top)
        return tuple(out)

    def rewrite(
        self,
        job: RewriteJob,
        on_frame: Callable[[Frame], None] | None = None,
        cancel: CancelToken | None = None,
        frame_interval_s: float = 0.0,
    ) -> RewriteResult:
        self.jobs.append(job)
        started = time.perf_counter()
        seed = job.settings.seed if job.settings.seed is not None else next(self.seeds)
        final = fake_rewrite_text(job.request.target, job.request.instruction, seed)
        pieces = [w + " " for w in final.split(" ")]
        pieces[-1] = pieces[-1].rstrip()
        n = len(pieces)
        steps = job.settings.steps or 8
        noise = ["#~%"[i % 3] * max(1, len(p) - 1) + " " for i, p in enumerate(pieces)]
        previous: list[str] | None = None
        for step in range(1, steps + 1):
            if self.permits is not None:
                while not self.free.is_set() and not self.permits.acquire(timeout=0.01):
                    if cancel is not None and cancel.cancelled:
                        raise Cancelled()
            time.sleep(self.step_delay_s)
            if cancel is not None and cancel.cancelled:
                raise Cancelled()
            if self.fail_with is not None and step == 2:
                raise self.fail_with
            accepted = [i < n * step // steps for i in range(n)]
            shown = [pieces[i] if accepted[i] else noise[i] for i in range(n)]
            spans, pos = [], 0
            for p in shown:
                spans.append((pos, pos + len(p)))
                pos += len(p)
            changed = [previous is None or previous[i] != shown[i] for i in range(n)]
            previous = shown
            self.steps_done += 1
            if on_frame is not None:
                on_frame(
                    Frame(
                        job.job_id,
                        0,
                        step,
                        steps,
                        tuple(range(n)),
                        tuple(shown),
                        tuple(spans),
                        tuple(accepted),
                        tuple(changed),
                        (0.0,) * n,
                        "".join(shown),
                        step == steps,
                    )
                )
        result = RewriteResult(
            job.job_id,
            final,
            tuple(range(n)),
            steps,
            1,
            n / steps,
            1.0,
            2.0,
            time.perf_counter() - started,
            seed,
            self.name,
            slots=self._slots(job, seed),
        )
        self.results.append(result)
        return result

    def alternatives(
        self,
        job: RewriteJob,
        count: int,
        on_frame: Callable[[AlternativesFrame], None] | None = None,
        cancel: CancelToken | None = None,
        frame_interval_s: float = 0.0,
    ) -> AlternativesResult:
        """``count`` candidates with seeds seed, seed + 1, ...: their frames step by step, side by side."""
        seed = job.settings.seed if job.settings.seed is not None else next(self.seeds)
        per: list[list[Frame]] = []
        results = []
        for i in range(count):
            frames: list[Frame] = []
            settings = dataclasses.replace(job.settings, seed=seed + i)
            results.append(self.rewrite(dataclasses.replace(job, settings=settings), frames.append, cancel))
            per.append(frames)
        for step in range(max(len(f) for f in per)):
            if cancel is not None and cancel.cancelled:
                raise Cancelled()
            time.sleep(self.step_delay_s)
            if on_frame is not None:
                frames_now = tuple(f[min(step, len(f) - 1)] for f in per)
                on_frame(AlternativesFrame(job.job_id, frames_now, step == len(per[0]) - 1))
        return AlternativesResult(job.job_id, seed, tuple(results), len(per[0]), 1, 0.1)

    @staticmethod
    def _slots(job: RewriteJob, seed: int) -> tuple[SlotOutcome, ...]:
        """A shape-true job's slots, each written as ``fake_rewrite_text`` writes its original."""
        free = [s for t in job.templates or () for s in t.segments if isinstance(s, FreeText)]
        texts = [fake_rewrite_text(s.original, job.request.instruction, seed) for s in free]
        counts = [(len(t.split()), len(s.original.split())) for t, s in zip(texts, free, strict=True)]
        return tuple(SlotOutcome(t, n, m, 1, 99) for t, (n, m) in zip(texts, counts, strict=True))


def fake_loader(engine: FakeEngine | None = None, fail: str = "") -> Callable[..., FakeEngine]:
    def load(
        path: str | Path | None = None,
        device: str | None = None,
        dtype: str | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> FakeEngine:
        if progress:
            progress("Loading fake model…")
        if fail:
            raise ModelLoadError(fail)
        return engine or FakeEngine()

    return load


__all__ = ["EngineError", "FakeEngine", "fake_loader", "fake_rewrite_text"]
