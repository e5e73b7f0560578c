"""Block diffusion on DiffusionGemma's components, top to bottom like the algorithm.

For each canvas: encode what is new into the KV cache (the whole prompt once, later only the finished
canvas), start a canvas (uniform noise, or the original text partly re-noised), then for each step:
decoder forward with self-conditioning, temperature, sample, accept by entropy bound, re-noise the
rest, report, check the adaptive stop. The decoder reads the cache and never writes it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from diffedit.engine.constraints import RunPlan
from diffedit.engine.cuda_graph import MIN_GRAPH_STEPS, GraphedCanvas, graphs_supported
from diffedit.engine.decoder import CanvasDecoder, EncodedContext
from diffedit.engine.fused_step import FusedCanvasDecoder, StepKernels, compiled_kernels, fusable
from diffedit.engine.placement import is_offloaded
from diffedit.engine.sampling import (
    CanvasConstraints,
    SamplerConfig,
    draw_fast,
    draw_reference,
    empty_history,
    hold,
    next_canvas,
    read_step,
    remember,
    settled,
    start_step,
    uniform_canvas,
    vocab_buffers,
    warm_start_canvas,
)
from diffedit.engine.static_cache import StaticCanvasCache
from diffedit.engine.types import Cancelled, CancelToken, SamplingMode


@dataclass(frozen=True)
class DenoiseOptions:
    """How one job denoises: the sampler's settings and what the canvases may hold and start from."""

    sampler: SamplerConfig
    eos_ids: frozenset[int]  # a canvas holding one of these is the last
    pad_id: int
    max_canvases: int = 1
    mode: SamplingMode = "fast"
    # Refine: each canvas starts from these tokens (the original's canvases) with a share ``strength``
    # re-noised, entering the schedule late; canvases past them start from noise.
    warm_canvases: tuple[tuple[int, ...], ...] = ()
    strength: float = 1.0
    forbid_empty: bool = False  # no end token at the first position: a rewrite may not delete the passage
    compile_step: bool = False  # the decoder layers as compiled fused kernels (diffedit.engine.fused_step)
    frame_interval_s: float = 0.0  # how often the graphed loop copies a frame off the device, at most
    # Shape-true: the runs of canvases to write in order, each under its constraints (compiled from block
    # templates by diffedit.engine.constraints); empty: free form, up to ``max_canvases`` canvases.
    runs: tuple[RunPlan, ...] = ()
    # A completion request's first canvas (``diffedit serve``'s vLLM-protocol endpoint): start from exactly
    # these ids at the top of the schedule (no re-noising), with ``pinned`` positions held at their seed value
    # on every step. ``stop_at_end`` False: a canvas holding an end token is not the last (vLLM's ignore_eos).
    seed_canvas: tuple[int, ...] | None = None
    pinned: tuple[int, ...] = ()
    stop_at_end: bool = True


@dataclass(frozen=True)
class StepView:
    """One step's state as tensors on the model's device; the caller decides what to copy out."""

    canvas_index: int
    step: int
    total_steps: int
    argmax: torch.Tensor  # (canvas_length,)
    accepted: torch.Tensor  # (canvas_length,) bool
    entropy: torch.Tensor  # (canvas_length,)
    finished_tokens: list[int]  # tokens of the canvases already finished
    tail: str = ""  # the original text after this canvas's run, not written yet (shape-true jobs)


@dataclass
class DenoiseOutcome:
    tokens: list[int]  # every generated token, pad after the first end token (as transformers returns)
    forwards: int = 0
    canvases: int = 0
    encode_s: float = 0.0
    step_s: list[float] = field(default_factory=list)
    graphed: bool | None = None  # None: no canvas ran as a graph; else whether every one was captured
    compiled: bool | None = None  # None: not asked for; else whether the compiled step kernels ran
    compile_error: str | None = None  # why they did not, where they were asked for and failed
    runs_kept: list[list[int]] = field(default_factory=list)  # shape-true: each run's tokens before its end

    @property
    def step_s_median(self) -> float:
        return statistics.median(self.step_s) if self.step_s else 0.0


@dataclass
class _Job:
    """What every canvas of one denoising run shares."""

    options: DenoiseOptions
    generator: torch.Generator
    observe: Callable[[StepView], None] | None
    cancel: CancelToken | None
    outcome: DenoiseOutcome


@dataclass
class _Canvas:
    """One canvas: its decoder and where its steps start."""

    index: int
    decoder: CanvasDecoder
    start: torch.Tensor  # (1, canvas_length): the first step's input, held tokens laid in
    first_step: int
    constraints: CanvasConstraints | None
    tail: str = ""


def denoise(
    model: Any,
    prompt_ids: list[int],
    options: DenoiseOptions,
    generator: torch.Generator,
    observe: Callable[[StepView], None] | None = None,
    cancel: CancelToken | None = None,
) -> DenoiseOutcome:
    """Canvases after ``prompt_ids``: free form, up to ``options.max_canvases``, stopping after one holding an
    end token; shape-true, each of ``options.runs`` in turn, each run's canvases under its constraints.

    On a CUDA device the fast mode captures each canvas's step as a CUDA graph. Where compiling the step
    (``options.compile_step``) fails, the step runs uncompiled and the outcome says why.
    """
    device = model.device
    canvas_length = int(model.config.canvas_length)
    vocab_size = int(model.config.text_config.vocab_size)
    cfg, mode = options.sampler, options.mode
    outcome = DenoiseOutcome(tokens=[])
    job = _Job(options, generator, observe, cancel, outcome)
    kernels = _step_kernels(model, mode, options.compile_step, outcome)
    # Layers whose weights accelerate copies in per forward cannot be captured in a CUDA graph.
    graphed = graphs_supported(device) and not is_offloaded(model)
    end_tensor = torch.tensor(sorted(options.eos_ids), device=device)
    free_form: CanvasConstraints | None = None
    if options.forbid_empty:
        end_ids = torch.tensor(sorted(options.eos_ids | {options.pad_id}), device=device)
        free_form = CanvasConstraints(forbidden=(torch.zeros_like(end_ids), end_ids))

    context = EncodedContext(model)
    ids = torch.tensor([prompt_ids], dtype=torch.long, device=device)
    runs: tuple[RunPlan | None, ...] = options.runs or (None,)
    index = 0  # canvases so far, over all runs
    # Inference mode throughout (as no_grad, without autograd's per-op bookkeeping: about 4% of a CPU step),
    # so that the eager and the graphed loop hand the compiled step tensors of one kind (a compiled function
    # is compiled again for tensors made outside inference mode).
    with torch.inference_mode():
        for run in runs:
            kept: list[int] = []
            for k in range(options.max_canvases if run is None else run.canvases):
                _check(cancel)
                t0 = time.perf_counter()
                if ids.shape[1]:
                    context.append(ids)  # the prompt, then each finished canvas
                if index == 0:
                    outcome.encode_s = time.perf_counter() - t0

                # Canvas start: the original text partly re-noised (refine), or pure noise (fresh).
                if run is None:
                    constraints = free_form if index == 0 else None
                    warm: Sequence[int] | None = (
                        options.warm_canvases[k] if k < len(options.warm_canvases) else None
                    )
                else:
                    constraints, warm = run.constraints(k, device), run.warm_start(k)
                if index == 0 and options.seed_canvas is not None:
                    start = torch.tensor([list(options.seed_canvas)], dtype=torch.long, device=device)
                    first_step = cfg.max_steps
                    constraints = _pinned(options, device)
                elif warm is not None and options.strength < 1.0:
                    original = torch.tensor([warm], dtype=torch.long, device=device)
                    start = warm_start_canvas(original, options.strength, vocab_size, generator)
                    first_step = start_step(options.strength, cfg.max_steps)
                else:
                    start = uniform_canvas((1, canvas_length), vocab_size, generator, device)
                    first_step = cfg.max_steps
                masks, positions = context.canvas_inputs(device)
                decoder = (
                    CanvasDecoder(model, masks, context.cache, positions)
                    if kernels is None
                    else FusedCanvasDecoder(model, masks, context.cache, positions, kernels, outcome)
                )
                tail = "" if run is None else run.tail
                canvas = _Canvas(index, decoder, hold(start, constraints), first_step, constraints, tail)
                with StaticCanvasCache(context.cache, canvas_length).installed(model):
                    if mode == "fast" and graphed and first_step >= MIN_GRAPH_STEPS:
                        argmax = _graphed_canvas(job, canvas)
                    else:
                        argmax = _eager_canvas(job, canvas)

                outcome.canvases += 1
                index += 1
                block = argmax[0]
                is_end = torch.isin(block, end_tensor)
                if options.stop_at_end and bool(is_end.any()):
                    first_end = int(is_end.nonzero()[0, 0])
                    if run is None:  # free form: the tokens as transformers returns them, then stop
                        block = block.clone()
                        block[first_end + 1 :] = options.pad_id
                        outcome.tokens.extend(block.tolist())
                        return outcome
                    written = block[:first_end].tolist()
                    kept += written
                    outcome.tokens.extend(written)
                    ids = argmax[:, :first_end]  # the next run reads this run's text, without its end
                    break
                outcome.tokens.extend(block.tolist())
                kept += block.tolist()
                ids = argmax  # the finished canvas is the next thing the encoder appends to the cache
            if run is not None:
                outcome.runs_kept.append(kept)
    return outcome


def _pinned(options: DenoiseOptions, device: torch.device) -> CanvasConstraints | None:
    """The seed canvas's pinned positions as held constraints."""
    if not options.pinned or options.seed_canvas is None:
        return None
    positions = sorted(set(options.pinned))
    tokens = [options.seed_canvas[p] for p in positions]
    held = (torch.tensor(positions, device=device), torch.tensor(tokens, device=device))
    return CanvasConstraints(held=held)


def _eager_canvas(job: _Job, canvas: _Canvas) -> torch.Tensor:
    """One canvas, step by step on the host: returns the final argmax canvas, shape (1, canvas_length)."""
    cfg, generator, outcome, decoder = job.options.sampler, job.generator, job.outcome, canvas.decoder
    reference = job.options.mode == "reference"
    device = canvas.start.device
    tokens = canvas.start
    history = empty_history(cfg, tuple(tokens.shape), device)
    out = None if reference else vocab_buffers((*tokens.shape, decoder.vocab_size), device)
    self_cond: torch.Tensor | None = None
    argmax = tokens
    for remaining in range(canvas.first_step, 0, -1):
        _check(job.cancel)
        t_step = time.perf_counter()
        logits = decoder(tokens, self_cond)
        left = torch.tensor(remaining, device=device, dtype=torch.int32)
        scored, accepted = read_step(logits, cfg, left, canvas.constraints, reference, out)
        drawn = (draw_reference if reference else draw_fast)(scored, accepted, generator)
        fresh = uniform_canvas(tuple(tokens.shape), decoder.vocab_size, generator, device)
        tokens = next_canvas(accepted, drawn, fresh, canvas.constraints)
        finished = settled(history, scored.argmax, scored.entropy, cfg.confidence_threshold)
        history = remember(history, scored.argmax)
        argmax = scored.argmax
        self_cond = scored.logits.to(decoder.self_cond_dtype)
        outcome.forwards += 1
        if job.observe is not None:
            step, total = canvas.first_step - remaining + 1, canvas.first_step
            view = StepView(
                canvas.index,
                step,
                total,
                argmax[0],
                accepted[0],
                scored.entropy[0],
                outcome.tokens,
                canvas.tail,
            )
            job.observe(view)
        done = bool(finished.all())  # one host sync per step: the stop flag
        outcome.step_s.append(time.perf_counter() - t_step)
        if done:
            break
    return argmax


def _graphed_canvas(job: _Job, canvas: _Canvas) -> torch.Tensor:
    """One canvas as a captured CUDA graph (see :mod:`diffedit.engine.cuda_graph`)."""
    on_step = None
    if job.observe is not None:
        sink, outcome = job.observe, job.outcome

        def on_step(step: int, argmax: torch.Tensor, accepted: torch.Tensor, entropy: torch.Tensor) -> None:
            sink(
                StepView(
                    canvas.index,
                    step,
                    canvas.first_step,
                    argmax,
                    accepted,
                    entropy,
                    outcome.tokens,
                    canvas.tail,
                )
            )

    graphed = GraphedCanvas(
        canvas.decoder,
        canvas.start,
        canvas.first_step,
        job.options.sampler,
        job.generator,
        canvas.constraints,
    )
    run = graphed.run(on_step, lambda: _check(job.cancel), job.options.frame_interval_s)
    outcome = job.outcome
    outcome.forwards += run.forwards
    outcome.step_s.extend(run.step_s)
    outcome.graphed = run.graphed if outcome.graphed is None else outcome.graphed and run.graphed
    return run.argmax[None]


def _step_kernels(
    model: Any, mode: SamplingMode, compile_step: bool, outcome: DenoiseOutcome
) -> StepKernels | None:
    """The compiled step kernels where asked for and possible; None: the model's own layers."""
    if not compile_step:
        return None
    why = "reference mode runs the model's own layers" if mode == "reference" else fusable(model)
    if why is not None:
        outcome.compiled, outcome.compile_error = False, why
        return None
    return compiled_kernels()


def _check(cancel: CancelToken | None) -> None:
    if cancel is not None and cancel.cancelled:
        raise Cancelled()
