"""The engine the editor and the CLI share: one loaded model, rewrite jobs in, frames and a result out."""

from __future__ import annotations

import dataclasses
import math
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from diffedit.engine.canvas import layout_canvases, trim_at_end
from diffedit.engine.constraints import (
    JobPlan,
    TokenClasses,
    compile_templates,
    polish_run,
    printable,
    run_canvases,
    slot_positions,
)
from diffedit.engine.cuda_graph import MIN_GRAPH_STEPS
from diffedit.engine.denoise import DenoiseOptions, StepView, denoise
from diffedit.engine.inspect import read_canvases
from diffedit.engine.load_progress import loading_line
from diffedit.engine.loader import LoadedModel, load_model
from diffedit.engine.sampling import SamplerConfig
from diffedit.engine.types import (
    AlternativesFrame,
    AlternativesResult,
    BlockTemplate,
    CancelToken,
    EditRequest,
    EngineError,
    Frame,
    FreeText,
    RewriteJob,
    RewriteResult,
    SlotOutcome,
    TokenReading,
    batches_blocks,
)

# A rewrite may grow: allow twice the original plus some room, in whole canvases, within this cap.
MAX_CANVASES = 8


class Engine:
    """A loaded DiffusionGemma model, reused across jobs. Jobs run one at a time on the calling thread."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.name = loaded.info.name
        self.device = loaded.device
        self.canvas_length = int(self.model.config.canvas_length)
        gen = self.model.generation_config
        self.defaults = SamplerConfig(
            max_steps=int(gen.max_denoising_steps or 48),
            entropy_bound=float(gen.sampler_config.entropy_bound if gen.sampler_config else 0.1),
            t_min=float(gen.t_min if gen.t_min is not None else 0.4),
            t_max=float(gen.t_max if gen.t_max is not None else 0.8),
            stability_threshold=int(gen.stability_threshold if gen.stability_threshold is not None else 1),
            confidence_threshold=float(
                gen.confidence_threshold if gen.confidence_threshold is not None else 0.005
            ),
        )
        eos = gen.eos_token_id if gen.eos_token_id is not None else self.tokenizer.eos_token_id
        self.eos_ids = frozenset(int(e) for e in (eos if isinstance(eos, list) else [eos]) if e is not None)
        pad = gen.pad_token_id if gen.pad_token_id is not None else self.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else next(iter(self.eos_ids)))
        self.end_ids: frozenset[int] = frozenset(self.eos_ids | {self.pad_id})  # read per token in frames
        self._pieces: dict[int, str] = {}
        self._token_classes: TokenClasses | None = None
        # Decoder layers as compiled fused kernels (diffedit.engine.fused_step): off unless asked for.
        self.compile_step = False
        self.compile_error: str | None = None  # why the compiled step fell back, once it has

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        device: str | None = None,
        dtype: str | None = None,
        progress: Callable[[str], None] | None = None,
        trust_remote_code: bool = False,
        fp8: bool = False,
        compile_step: bool = False,
        quantize: str = "none",
        impl: str = "transformers",
        offload: str = "auto",
    ) -> Engine:
        what = Path(path).name if path else "the bundled demo model"

        def on_weights(done: int, total: int) -> None:
            if progress:
                progress(loading_line(what, done, total))

        if progress:
            how = f" ({quantize}, quantising while loading)" if quantize != "none" else ""
            progress(f"Loading {what}{how}…")
        loaded = load_model(
            path,
            device,
            dtype,
            trust_remote_code=trust_remote_code,
            fp8=fp8,
            on_weights=on_weights if progress else None,
            quantize=quantize,
            impl=impl,
            offload=offload,
        )
        engine = cls(loaded)
        engine.compile_step = compile_step
        if compile_step:
            if progress:
                progress("Compiling the decoder step (once: the next start reads it from the cache)…")
            engine.warm_up()
        if progress:
            split = f" ({loaded.placement.describe()})" if loaded.placement is not None else ""
            progress(f"Loaded {engine.name} on {engine.device}{split}")
        return engine

    def warm_up(self) -> None:
        """One short canvas, so that compilation (and a graph capture) happens while the model loads, not
        during the user's first rewrite; sets ``compile_error`` where the compiled step fell back."""
        bos = self.tokenizer.bos_token_id
        prompt = [int(bos if bos is not None else self.pad_id)] * 8
        steps = MIN_GRAPH_STEPS  # enough for the graphed loop to capture, where there is one
        try:
            # no early stop: every step runs, the graph capture included
            sampler = dataclasses.replace(self.defaults, max_steps=steps, confidence_threshold=1e-30)
            outcome = denoise(
                self.model,
                prompt,
                DenoiseOptions(sampler, self.eos_ids, self.pad_id, compile_step=True),
                torch.Generator(device=self.device).manual_seed(0),
            )
        except (RuntimeError, torch.OutOfMemoryError) as exc:
            raise EngineError(f"the model failed its first step: {str(exc).splitlines()[0][:300]}") from exc
        if outcome.compile_error is not None:
            self.compile_error = outcome.compile_error

    def plan(self, job: RewriteJob) -> JobPlan | None:
        """A shape-true job's runs of canvases and their constraints; None for a free-form job (a free-form
        polish: the target as one slot of its own length). Raises ``KeepRefused`` for kept words that do not
        fit, before anything runs."""
        templates = job.templates
        if templates is None and job.polish is not None:
            templates = (BlockTemplate("text", (FreeText("text", job.request.target, band=(1.0, 1.0)),)),)
        if templates is None:
            return None
        eos = next(iter(sorted(self.eos_ids)))
        return compile_templates(
            templates, self.tokenizer, self.token_classes(), self.canvas_length, eos, self.pad_id
        )

    def token_classes(self) -> TokenClasses:
        if self._token_classes is None:  # every token decoded once, on the first shape-true job
            vocab = int(self.model.config.text_config.vocab_size)
            self._token_classes = TokenClasses(self.tokenizer, vocab, self.end_ids)
        return self._token_classes

    def polish_plan(
        self, plan: JobPlan, prompt_ids: list[int], threshold: float, cancel: CancelToken | None = None
    ) -> tuple[JobPlan, int]:
        """``plan`` with every run's original held but at the slot tokens the model reads (one read-only
        pass, the runs read as the original writes them) with probability below ``threshold``; and how many
        those are."""
        canvases: list[list[int]] = []
        carry: list[list[int]] = []
        for run in plan.runs:
            c, k = run_canvases(run)
            canvases += c
            carry += k
        readings = read_canvases(self.model, prompt_ids, canvases, carry, top_k=1, cancel=cancel)
        p = [q for reading in readings for q in reading.p]
        runs, offset, weak_total = [], 0, 0
        for run in plan.runs:
            weak = [i for i in slot_positions(run) if p[offset + i] < threshold]
            runs.append(polish_run(run, weak, self.token_classes()))
            offset += run.canvases * self.canvas_length
            weak_total += len(weak)
        return JobPlan(runs, plan.trailing), weak_total

    def token_spans(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """``text``'s tokens (as a rewrite encodes it) and their character spans, tiling ``text`` exactly."""
        if not text:
            return [], []
        if getattr(self.tokenizer, "is_fast", False):
            enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            ids, ends = [int(i) for i in enc["input_ids"]], [int(e) for _, e in enc["offset_mapping"]]
        else:  # where the decoded prefix grows (a token inside a character adds nothing yet)
            ids = list(self.tokenizer.encode(text, add_special_tokens=False))
            ends = [len(str(self.tokenizer.decode(ids[: i + 1]))) for i in range(len(ids))]
        spans, done = [], 0
        for i, end in enumerate(ends):
            end = len(text) if i == len(ends) - 1 else min(len(text), max(done, end))
            spans.append((done, end))
            done = end
        return ids, spans

    def inspect(
        self,
        request: EditRequest,
        top_k: int = 5,
        context_tokens: int = 1024,
        cancel: CancelToken | None = None,
    ) -> tuple[TokenReading, ...]:
        """The model's reading of ``request.target`` in its context (:mod:`diffedit.engine.inspect`): one
        reading per token, spans in the target's characters."""
        fmt = self.loaded.context_format
        budget = min(context_tokens, fmt.context_tokens or context_tokens)
        context = fmt.build(self.tokenizer, request, budget)
        ids, spans = self.token_spans(request.target)
        if not ids:
            return ()
        eos = next(iter(sorted(self.eos_ids)))
        canvases = layout_canvases(ids, self.canvas_length, eos, self.pad_id)
        try:
            readings = read_canvases(self.model, context.input_ids, canvases, top_k=top_k, cancel=cancel)
        except torch.OutOfMemoryError as exc:
            raise EngineError(f"out of memory on {self.device}: read less text at once") from exc
        out: list[TokenReading] = []
        for i, (token, (start, end)) in enumerate(zip(ids, spans, strict=True)):
            r, j = readings[i // self.canvas_length], i % self.canvas_length
            top = tuple((self.piece(t), q) for t, q in zip(r.top_ids[j], r.top_p[j], strict=True))
            out.append(TokenReading(token, start, end, r.p[j], r.entropy[j], top))
        return tuple(out)

    def options_for(
        self, job: RewriteJob, target_ids: list[int], frame_interval_s: float, plan: JobPlan | None = None
    ) -> DenoiseOptions:
        """The job's settings over the checkpoint's defaults (the settings checked their own values)."""
        s, d = job.settings, self.defaults
        sampler = SamplerConfig(
            max_steps=s.steps or d.max_steps,
            entropy_bound=s.entropy_bound if s.entropy_bound is not None else d.entropy_bound,
            t_min=s.t_min if s.t_min is not None else d.t_min,
            t_max=s.t_max if s.t_max is not None else d.t_max,
            stability_threshold=d.stability_threshold,
            confidence_threshold=d.confidence_threshold,
        )
        eos = next(iter(sorted(self.eos_ids)))
        warm = layout_canvases(target_ids, self.canvas_length, eos, self.pad_id) if s.strength < 1.0 else []
        return DenoiseOptions(
            sampler,
            self.eos_ids,
            self.pad_id,
            max_canvases=self.max_canvases_for(len(target_ids), s.max_new_tokens),
            mode=s.sampling,
            warm_canvases=tuple(tuple(c) for c in warm),
            strength=s.strength,
            # A rewrite may shorten a passage but not delete it (reference mode keeps transformers' way).
            forbid_empty=s.sampling == "fast" and bool(job.request.target.strip()),
            compile_step=self.compile_step and self.compile_error is None,
            frame_interval_s=frame_interval_s,
            runs=tuple(plan.runs) if plan is not None else (),
        )

    def max_canvases_for(self, target_tokens: int, max_new_tokens: int | None) -> int:
        if max_new_tokens is not None:
            return max(1, math.ceil(max_new_tokens / self.canvas_length))
        wanted = 2 * target_tokens + 16
        return max(1, min(MAX_CANVASES, math.ceil(wanted / self.canvas_length)))

    def rewrite(
        self,
        job: RewriteJob,
        on_frame: Callable[[Frame], None] | None = None,
        cancel: Any = None,
        frame_interval_s: float = 0.0,
    ) -> RewriteResult:
        """Run one job to the end. Raises ``Cancelled`` if ``cancel`` fires, ``EngineError`` on failure."""
        started = time.perf_counter()
        if batches_blocks(job):  # a multi-block selection: its blocks as one batch of canvases
            from diffedit.engine.batch_jobs import rewrite_blocks_batched

            return rewrite_blocks_batched(self, job, on_frame, cancel, frame_interval_s)
        seed, prompt, target_ids, plan = self.prepare(job)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        polished = None
        if plan is not None and job.polish is not None:
            plan, polished = self.polish_plan(plan, prompt.input_ids, job.polish, cancel)

        observe = None
        if on_frame is not None:
            observe = _FrameEmitter(self, job.job_id, on_frame, frame_interval_s)
        with self.failures():
            outcome = denoise(
                self.model,
                prompt.input_ids,
                self.options_for(job, target_ids, frame_interval_s, plan),
                generator,
                observe=observe,
                cancel=cancel,
            )
        result = self.result_of(job, plan, outcome, seed, prompt.truncated, started, polished)
        if observe is not None:
            observe.emit_final(result.text)
        return result

    def prepare(self, job: RewriteJob) -> tuple[int, Any, list[int], JobPlan | None]:
        """A job's seed (drawn where it has none), prompt, target tokens and plan."""
        settings = job.settings
        seed = settings.seed if settings.seed is not None else secrets.randbelow(2**31)
        fmt = self.loaded.context_format
        budget = min(settings.context_tokens, fmt.context_tokens or settings.context_tokens)
        context = fmt.build(self.tokenizer, job.request, budget)
        target_ids = list(self.tokenizer.encode(job.request.target, add_special_tokens=False))
        return seed, context, target_ids, self.plan(job)

    @contextmanager
    def failures(self) -> Iterator[None]:
        """Out of memory and model failures as ``EngineError`` messages a user can act on."""
        try:
            yield
        except torch.OutOfMemoryError as exc:
            raise EngineError(
                f"out of memory on {self.device}: shorten the selection or the context, "
                "or use a smaller model"
            ) from exc
        except RuntimeError as exc:
            raise EngineError(f"the model failed: {str(exc).splitlines()[0][:300]}") from exc

    def result_of(
        self,
        job: RewriteJob,
        plan: JobPlan | None,
        outcome: Any,
        seed: int,
        truncated: bool,
        started: float,
        polished: int | None = None,
    ) -> RewriteResult:
        """The result of one job's denoising outcome (a :class:`DenoiseOutcome`)."""
        settings = job.settings
        if outcome.compile_error is not None and settings.sampling == "fast":
            self.compile_error = outcome.compile_error  # not tried again: each try costs a compilation
        slots: tuple[SlotOutcome, ...] = ()
        if plan is None:
            kept = trim_at_end(outcome.tokens, self.end_ids)
            text = self.decode(kept)
            if not job.request.target[:1].isspace():
                text = text.lstrip()  # the block keeps its place: no stray indentation (that would make code)
        else:
            kept = outcome.tokens
            slots = self._slots(plan, outcome.runs_kept)
            text = self.decode_raw(kept) + plan.trailing  # held text and slots as written, unrendered
        # tokens the model wrote, each run's end included (held text was laid in, not written)
        written, ends = (len(kept), 1) if plan is None else (sum(s.tokens for s in slots), len(plan.runs))
        return RewriteResult(
            job_id=job.job_id,
            text=text,
            token_ids=tuple(outcome.tokens),
            steps=outcome.forwards,
            canvases=outcome.canvases,
            tokens_per_forward=(written + ends) / max(1, outcome.forwards),
            encode_ms=outcome.encode_s * 1000,
            step_ms_median=outcome.step_s_median * 1000,
            total_s=time.perf_counter() - started,
            seed=seed,
            model=self.name,
            truncated_context=truncated,
            compiled=self._compiled(outcome),
            slots=slots,
            polished=polished,
        )

    def alternatives(
        self,
        job: RewriteJob,
        count: int,
        on_frame: Callable[[AlternativesFrame], None] | None = None,
        cancel: Any = None,
        frame_interval_s: float = 0.0,
    ) -> AlternativesResult:
        """``count`` candidates for one job, denoised as one batch (see :mod:`diffedit.engine.batch_jobs`)."""
        from diffedit.engine.batch_jobs import alternatives

        return alternatives(self, job, count, on_frame, cancel, frame_interval_s)

    def _slots(self, plan: JobPlan, runs_kept: list[list[int]]) -> tuple[SlotOutcome, ...]:
        out: list[SlotOutcome] = []
        for run, kept in zip(plan.runs, runs_kept, strict=True):
            for slot, ids in zip(run.slots, run.slot_ids(kept), strict=True):
                text = self.decode_raw(ids)
                out.append(
                    SlotOutcome(text, len(ids), slot.original_tokens, slot.min_tokens, slot.max_tokens)
                )
        return tuple(out)

    def _compiled(self, outcome: Any) -> bool | None:
        """Whether the compiled step ran; False also where it fell back at an earlier run (not retried)."""
        if outcome.compiled is not None:
            return bool(outcome.compiled)
        return False if self.compile_step else None

    def decode(self, ids: list[int]) -> str:
        """The replacement text: no special tokens, no trailing blank lines (the block keeps its gap)."""
        return self.decode_raw(ids).strip("\n").rstrip()

    def decode_raw(self, ids: list[int]) -> str:
        """The tokens' text without special tokens and control characters, nothing else stripped."""
        return printable(str(self.tokenizer.decode(ids, skip_special_tokens=True)))

    def piece(self, token_id: int) -> str:
        """One token's text, cached: frames decode a canvas per step without a tokenizer round trip."""
        piece = self._pieces.get(token_id)
        if piece is None:
            piece = str(self.tokenizer.decode([token_id], skip_special_tokens=True))
            self._pieces[token_id] = piece
        return piece


class FrameBuilder:
    """Turns one canvas sequence's step tensors into :class:`Frame` objects (each frame's ``changed`` is
    against the frame built before it)."""

    def __init__(self, engine: Engine, job_id: int) -> None:
        self.engine = engine
        self.job_id = job_id
        self._previous: list[int] | None = None
        self._head: tuple[int, str] = (0, "")  # finished canvases' text, decoded once per canvas

    def frame(self, view: StepView, final: bool, text: str | None = None) -> Frame:
        eng = self.engine
        ids = view.argmax.tolist()
        accepted = view.accepted.tolist()
        entropy = [round(float(h), 4) for h in view.entropy.tolist()]
        if self._head[0] != len(view.finished_tokens):
            decoded = str(eng.tokenizer.decode(view.finished_tokens, skip_special_tokens=True))
            self._head = (len(view.finished_tokens), decoded)
        head = self._head[1]
        pieces: list[str] = []
        spans: list[tuple[int, int]] = []
        pos = len(head)
        ended = False
        for t in ids:
            ended = ended or t in eng.end_ids
            piece = "" if ended else eng.piece(t)
            pieces.append(piece)
            spans.append((pos, pos + len(piece)))
            pos += len(piece)
        changed = (
            [True] * len(ids)
            if self._previous is None
            else [a != b for a, b in zip(ids, self._previous, strict=True)]
        )
        self._previous = ids
        return Frame(
            job_id=self.job_id,
            canvas_index=view.canvas_index,
            step=view.step,
            total_steps=view.total_steps,
            token_ids=tuple(ids),
            pieces=tuple(pieces),
            spans=tuple(spans),
            accepted=tuple(accepted),
            changed=tuple(changed),
            entropy=tuple(entropy),
            text=text if text is not None else head + "".join(pieces) + view.tail,
            final=final,
        )


class _FrameEmitter:
    """Turns step tensors into :class:`Frame` objects, only as often as the caller asked."""

    def __init__(self, engine: Engine, job_id: int, sink: Callable[[Frame], None], interval_s: float) -> None:
        self.builder = FrameBuilder(engine, job_id)
        self.sink = sink
        self.interval_s = interval_s
        self._last_emit: float | None = None
        self._last_view: StepView | None = None

    def __call__(self, view: StepView) -> None:
        self._last_view = view
        now = time.perf_counter()
        if self._last_emit is not None and now - self._last_emit < self.interval_s:
            return
        self._last_emit = now
        self.sink(self.builder.frame(view, final=False))

    def emit_final(self, text: str) -> None:
        if self._last_view is not None:
            self.sink(self.builder.frame(self._last_view, final=True, text=text))
