"""Block diffusion on DiffusionGemma's components, top to bottom like the algorithm.

For each canvas: encode what is new into the KV cache (the whole prompt once, later only the finished
canvas), start a canvas (uniform noise, or the original text partly re-noised), then for each step:
decoder forward with self-conditioning, temperature, sample, accept by entropy bound, re-noise the
rest, report, check the adaptive stop. The decoder reads the cache and never writes it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers.cache_utils import DynamicCache

from diffedit.engine.canvas_step import CanvasDecoder
from diffedit.engine.cuda_graph import MIN_GRAPH_STEPS, GraphedCanvas, graphs_supported
from diffedit.engine.fused_step import FusedCanvasDecoder, StepKernels, compiled_kernels, fusable
from diffedit.engine.sampling import (
    DenoiseConfig,
    FastScorer,
    StableAndConfident,
    draw_fast,
    draw_reference,
    entropy_bound_accept,
    renoise,
    score_reference,
    start_step,
    temperature_divisor,
    uniform_canvas,
    warm_start_canvas,
)
from diffedit.engine.static_cache import StaticCanvasCache
from diffedit.engine.types import Cancelled, CancelToken, SamplingMode


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


@dataclass
class DenoiseOutcome:
    tokens: list[int]  # every generated token, pad after the first end token (as transformers returns)
    forwards: int
    canvases: int
    encode_s: float
    step_s: list[float] = field(default_factory=list)
    graphed: bool | None = None  # None: no canvas ran as a graph; else whether every one was captured
    compiled: bool | None = None  # None: not asked for; else whether the compiled step kernels ran
    compile_error: str | None = None  # why they did not, where they were asked for and failed

    @property
    def step_s_median(self) -> float:
        return statistics.median(self.step_s) if self.step_s else 0.0


@dataclass
class _Canvas:
    """What one canvas's steps work with, whichever loop runs them."""

    model: Any
    cfg: DenoiseConfig
    masks: Any
    cache: DynamicCache
    positions: torch.Tensor
    canvas: torch.Tensor
    first_step: int
    generator: torch.Generator
    no_end_first: torch.Tensor | None
    index: int
    outcome: DenoiseOutcome
    observe: Callable[[StepView], None] | None
    cancel: CancelToken | None
    decoder: CanvasDecoder


def encoder_pass(
    model: Any, ids: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor, cache: DynamicCache
) -> None:
    """Append ``ids`` to the KV cache (the encoder is causal over everything encoded so far)."""
    dummy = torch.empty((ids.shape[0], ids.shape[1], 0), dtype=model.dtype, device=ids.device)
    masks = model.model.encoder.create_masks_for_generate(
        config=model.config,
        inputs_embeds=dummy,
        attention_mask=attention_mask,
        cache=cache,
        position_ids=positions,
    )
    model.model.encoder(input_ids=ids.contiguous(), attention_mask=masks, cache=cache, position_ids=positions)


def decoder_masks(model: Any, cache: DynamicCache, attention_mask: torch.Tensor, canvas_length: int) -> Any:
    """The decoder's attention masks (per layer type) for a canvas after the cached context;
    ``attention_mask`` covers context and canvas."""
    shape_only = torch.empty((attention_mask.shape[0], canvas_length, 1), device=attention_mask.device)
    return model.model.decoder.create_diffusion_decoder_attention_mask(
        config=model.config, inputs_embeds=shape_only, cache=cache, decoder_attention_mask=attention_mask
    )


@dataclass
class EncodedContext:
    """A context in a fresh KV cache, and what one canvas after it is decoded with."""

    cache: DynamicCache
    positions: torch.Tensor  # (1, canvas_length): the canvas's positions
    masks: Any  # the decoder's attention masks, per layer type


def encode_context(model: Any, ids: torch.Tensor) -> EncodedContext:
    """Encode ``ids`` (1, n) for one canvas: for tools and tests that call the decoder themselves."""
    n, length, device = ids.shape[1], int(model.config.canvas_length), ids.device
    cache = DynamicCache(config=model.config.get_text_config(decoder=True))
    with torch.no_grad():
        mask = torch.ones((1, n), dtype=torch.bool, device=device)
        encoder_pass(model, ids, mask, torch.arange(n, dtype=torch.int32, device=device)[None], cache)
    positions = torch.arange(n, n + length, dtype=torch.int32, device=device)[None]
    full = torch.ones((1, n + length), dtype=torch.bool, device=device)
    return EncodedContext(cache, positions, decoder_masks(model, cache, full, length))


def denoise(
    model: Any,
    prompt_ids: list[int],
    cfg: DenoiseConfig,
    *,
    max_canvases: int,
    eos_ids: set[int],
    pad_id: int,
    generator: torch.Generator,
    mode: SamplingMode = "fast",
    warm_canvases: list[list[int]] | None = None,
    strength: float = 1.0,
    observe: Callable[[StepView], None] | None = None,
    cancel: CancelToken | None = None,
    forbid_empty: bool = False,
    graphs: bool = True,
    frame_interval_s: float = 0.0,
    compile_step: bool = False,
) -> DenoiseOutcome:
    """Up to ``max_canvases`` canvases after ``prompt_ids``; stops after a canvas holding an end token.

    On a CUDA device the fast mode captures each canvas's step as a CUDA graph (``graphs=False`` keeps the
    eager loop); ``frame_interval_s`` bounds how often a graphed loop copies a frame off the device.
    ``compile_step`` runs the decoder layers as compiled fused kernels (:mod:`diffedit.engine.fused_step`);
    where compiling fails the step runs uncompiled and the outcome says why.
    """
    device = model.device
    canvas_length = int(model.config.canvas_length)
    vocab_size = int(model.config.text_config.vocab_size)
    embed_dtype = model.model.decoder.embed_tokens.weight.dtype
    score, draw = (score_reference, draw_reference) if mode == "reference" else (FastScorer(), draw_fast)
    stopper = StableAndConfident(cfg.stability_threshold, cfg.confidence_threshold)

    ids = torch.tensor([prompt_ids], dtype=torch.long, device=device)
    seen = ids.shape[1]
    attention_mask = torch.ones((1, seen), dtype=torch.bool, device=device)
    encoder_positions = torch.arange(0, seen, dtype=torch.int32, device=device)[None]
    cache = DynamicCache(config=model.config.get_text_config(decoder=True))
    outcome = DenoiseOutcome(tokens=[], forwards=0, canvases=0, encode_s=0.0)
    kernels = _step_kernels(model, mode, compile_step, outcome)
    end_tensor = torch.tensor(sorted(eos_ids), device=device)
    # A rewrite may shorten a passage but not delete it: no end token in the first position.
    no_end_first = torch.tensor(sorted(eos_ids | {pad_id}), device=device) if forbid_empty else None

    # Inference mode throughout (as no_grad, without autograd's per-op bookkeeping: about 4% of a CPU step),
    # so that the eager and the graphed loop hand the compiled step tensors of one kind (a compiled function
    # is compiled again for tensors made outside inference mode).
    with torch.inference_mode():
        for index in range(max_canvases):
            _check(cancel)
            t0 = time.perf_counter()
            encoder_pass(model, ids, attention_mask, encoder_positions, cache)
            if index == 0:
                outcome.encode_s = time.perf_counter() - t0
            decoder_positions = torch.arange(seen, seen + canvas_length, dtype=torch.int32, device=device)[
                None
            ]
            decoder_mask = torch.nn.functional.pad(attention_mask, (0, canvas_length), value=True)

            # Canvas start: the original text partly re-noised (refine), or pure noise (fresh).
            if warm_canvases is not None and index < len(warm_canvases) and strength < 1.0:
                original = torch.tensor([warm_canvases[index]], dtype=torch.long, device=device)
                canvas = warm_start_canvas(original, strength, vocab_size, generator)
                first_step = start_step(strength, cfg.max_steps)
            else:
                canvas = uniform_canvas((1, canvas_length), vocab_size, generator, device)
                first_step = cfg.max_steps
            masks = decoder_masks(model, cache, decoder_mask, canvas_length)
            decoder = (
                CanvasDecoder(model, masks, cache, decoder_positions)
                if kernels is None
                else FusedCanvasDecoder(model, masks, cache, decoder_positions, kernels, outcome)
            )
            job = _Canvas(
                model, cfg, masks, cache, decoder_positions, canvas, first_step, generator,
                no_end_first if index == 0 else None, index, outcome, observe, cancel, decoder,
            )  # fmt: skip
            with StaticCanvasCache(cache, canvas_length).installed(model):
                if graphs and mode == "fast" and graphs_supported(device) and first_step >= MIN_GRAPH_STEPS:
                    argmax = _graphed_canvas(job, frame_interval_s)
                else:
                    argmax = _eager_canvas(job, score, draw, stopper, embed_dtype, vocab_size)

            outcome.canvases += 1
            block = argmax[0]
            is_end = torch.isin(block, end_tensor)
            if bool(is_end.any()):
                first_end = int(is_end.nonzero()[0, 0])
                block = block.clone()
                block[first_end + 1 :] = pad_id
                outcome.tokens.extend(block.tolist())
                break
            outcome.tokens.extend(block.tolist())
            # The finished canvas is the next thing the encoder appends to the cache.
            ids = argmax
            encoder_positions = decoder_positions
            seen += canvas_length
            attention_mask = torch.nn.functional.pad(attention_mask, (0, canvas_length), value=True)
    return outcome


def _eager_canvas(
    job: _Canvas,
    score: Callable[[torch.Tensor], Any],
    draw: Callable[..., torch.Tensor],
    stopper: StableAndConfident,
    embed_dtype: torch.dtype,
    vocab_size: int,
) -> torch.Tensor:
    """One canvas, step by step on the host: returns the final argmax canvas, shape (1, canvas_length)."""
    cfg, canvas, first_step, generator, outcome = (
        job.cfg,
        job.canvas,
        job.first_step,
        job.generator,
        job.outcome,
    )
    device = canvas.device
    stopper.reset()
    self_cond: torch.Tensor | None = None
    argmax = canvas
    decoder = job.decoder
    for cur_step in range(first_step, 0, -1):
        _check(job.cancel)
        t_step = time.perf_counter()
        logits = decoder(canvas, self_cond).div_(temperature_divisor(cfg, cur_step, device))
        if job.no_end_first is not None:
            logits[:, 0, job.no_end_first] = -1e30  # finite: entropy stays a number
        scored = score(logits)
        accepted = entropy_bound_accept(scored.entropy, cfg.entropy_bound)
        drawn = draw(scored, accepted, generator)
        canvas = renoise(torch.where(accepted, drawn, canvas), accepted, vocab_size, generator)
        finished = stopper(scored.argmax, scored.entropy)
        argmax = scored.argmax
        self_cond = logits.to(embed_dtype)
        outcome.forwards += 1
        if job.observe is not None:
            job.observe(
                StepView(
                    job.index,
                    first_step - cur_step + 1,
                    first_step,
                    argmax[0],
                    accepted[0],
                    scored.entropy[0],
                    outcome.tokens,
                )
            )
        done = bool(finished.all())  # one host sync per step: the stop flag
        outcome.step_s.append(time.perf_counter() - t_step)
        if done:
            break
    return argmax


def _graphed_canvas(job: _Canvas, frame_interval_s: float) -> torch.Tensor:
    """One canvas as a captured CUDA graph (see :mod:`diffedit.engine.cuda_graph`)."""
    on_step = None
    if job.observe is not None:
        sink = job.observe

        def on_step(step: int, argmax: torch.Tensor, accepted: torch.Tensor, entropy: torch.Tensor) -> None:
            sink(StepView(job.index, step, job.first_step, argmax, accepted, entropy, job.outcome.tokens))

    run = GraphedCanvas(
        job.model, job.cfg, job.masks, job.cache, job.positions, job.canvas, job.first_step, job.generator,
        job.no_end_first, decoder=job.decoder,
    ).run(on_step, lambda: _check(job.cancel), frame_interval_s)  # fmt: skip
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
