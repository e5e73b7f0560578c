"""A batch of canvases denoised together: one decoder forward per step for every row.

A *row* is one canvas sequence, as :func:`diffedit.engine.denoise.denoise` writes it for one job: its own
:class:`DenoiseOptions` (runs, constraints, warm start), its own generator, its own prompt. Rows with the same
prompt share one encode of it (alternatives: one encode, a batch of canvases); a row forks the shared cache
only when it appends a finished canvas of its own. Per step:

* one decoder forward over the batch: each row's context KV laid into one ``[context | canvas]`` buffer per
  layer (:class:`BatchCanvasCache`), rows with a shorter context left-padded and the padding masked out;
* the sampler once per row, on that row's logits, with that row's constraints and generator: the same
  functions, same order and same random draws as the single-canvas loop. So a row's tokens depend on its own
  seed and on its logits alone; where the batched forward computes a row's logits bit for bit as the
  single forward does (tested on the CPU for rows over one shared context), a row's own seed reproduces it
  alone;
* a row that settles (or runs out of steps) leaves the batch: its canvas stops changing, the buffers shrink
  to the rows still going, and the loop ends when every row has settled.

A row that needs another canvas (a long block, the next run of a shape-true job) appends its finished
canvas to its own context and joins the next *wave* of canvases. The batch runs the eager step (no CUDA
graph, no compiled kernels: those capture one batch-1 shape); :mod:`diffedit.engine.denoise` stays the
single-canvas path, token for token as before.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from diffedit.engine.constraints import RunPlan
from diffedit.engine.decoder import CanvasDecoder, EncodedContext
from diffedit.engine.denoise import DenoiseOptions, DenoiseOutcome, StepView
from diffedit.engine.sampling import (
    CanvasConstraints,
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
from diffedit.engine.types import Cancelled, CancelToken


def row_seeds(seed: int, rows: int) -> list[int]:
    """Each row's own seed from the run's: row 0 has the run's seed, row r the run's plus r."""
    return [(seed + r) % 2**64 for r in range(rows)]


@dataclass(frozen=True)
class BatchRow:
    """One row of a batch: the prompt it reads, how it denoises, and its own random stream."""

    prompt_ids: tuple[int, ...]
    options: DenoiseOptions
    generator: torch.Generator


@dataclass
class BatchOutcome:
    rows: list[DenoiseOutcome]
    forwards: int = 0  # batched decoder forwards (each serves every row still going)
    encodes: int = 0  # encoder passes over a prompt (rows sharing a prompt share one)
    waves: int = 0  # batched canvases in sequence (1 where every row fits one canvas)
    step_s: list[float] = field(default_factory=list)


# Called once per batched step with (row, view) for every row that stepped.
BatchObserver = Callable[[Sequence[tuple[int, StepView]]], None]


class _Row:
    """One row's progress through its canvases: mirrors the bookkeeping of ``denoise``."""

    def __init__(self, index: int, row: BatchRow, context: EncodedContext, device: torch.device) -> None:
        self.index = index
        self.options = row.options
        self.generator = row.generator
        self.context = context
        self.shared = True  # the context is the prompt's, shared with other rows: fork before appending
        self.device = device
        self.outcome = DenoiseOutcome(tokens=[])
        self.runs: tuple[RunPlan | None, ...] = row.options.runs or (None,)
        self.run = 0
        self.k = 0  # canvas within the run
        self.kept: list[int] = []
        self.canvases = 0
        self.pending: torch.Tensor | None = None  # a finished canvas to append before the next one
        self.done = False
        self.end_tensor = torch.tensor(sorted(row.options.eos_ids), device=device)
        self.free_form: CanvasConstraints | None = None
        if row.options.forbid_empty:
            end_ids = torch.tensor(sorted(row.options.eos_ids | {row.options.pad_id}), device=device)
            self.free_form = CanvasConstraints(forbidden=(torch.zeros_like(end_ids), end_ids))

    def catch_up(self) -> None:
        """Append the last finished canvas to this row's own context (forking the shared one first)."""
        if self.pending is None:
            return
        if self.shared:
            self.context = _fork(self.context)
            self.shared = False
        self.context.append(self.pending)
        self.pending = None

    def start(self, vocab_size: int, canvas_length: int) -> _Start:
        options, cfg, run = self.options, self.options.sampler, self.runs[self.run]
        warm: Sequence[int] | None
        if run is None:
            constraints = self.free_form if self.canvases == 0 else None
            warm = options.warm_canvases[self.k] if self.k < len(options.warm_canvases) else None
        else:
            constraints, warm = run.constraints(self.k, self.device), run.warm_start(self.k)
        if warm is not None and options.strength < 1.0:
            original = torch.tensor([warm], dtype=torch.long, device=self.device)
            start = warm_start_canvas(original, options.strength, vocab_size, self.generator)
            first_step = start_step(options.strength, cfg.max_steps)
        else:
            start = uniform_canvas((1, canvas_length), vocab_size, self.generator, self.device)
            first_step = cfg.max_steps
        tail = "" if run is None else run.tail
        return _Start(hold(start, constraints), first_step, constraints, tail)

    def finish(self, argmax: torch.Tensor) -> None:
        """The canvas is settled: keep its tokens, decide what comes next (as ``denoise`` does)."""
        options, run = self.options, self.runs[self.run]
        self.outcome.canvases += 1
        self.canvases += 1
        block = argmax[0]
        is_end = torch.isin(block, self.end_tensor)
        if bool(is_end.any()):
            first_end = int(is_end.nonzero()[0, 0])
            if run is None:
                block = block.clone()
                block[first_end + 1 :] = options.pad_id
                self.outcome.tokens.extend(block.tolist())
                self.done = True
                return
            written = block[:first_end].tolist()
            self.kept += written
            self.outcome.tokens.extend(written)
            self.pending = argmax[:, :first_end] if first_end else None
            self._next_run()
            return
        self.outcome.tokens.extend(block.tolist())
        self.kept += block.tolist()
        self.pending = argmax
        self.k += 1
        limit = options.max_canvases if run is None else run.canvases
        if self.k >= limit:
            if run is None:
                self.done = True
            else:
                self._next_run()

    def _next_run(self) -> None:
        if self.runs[self.run] is not None:
            self.outcome.runs_kept.append(self.kept)
        self.kept, self.k = [], 0
        self.run += 1
        self.done = self.run >= len(self.runs)


@dataclass
class _Start:
    tokens: torch.Tensor  # (1, canvas_length)
    first_step: int
    constraints: CanvasConstraints | None
    tail: str


def _fork(context: EncodedContext) -> EncodedContext:
    """A copy of an encoded context whose cache can grow on its own."""
    forked = copy.copy(context)
    forked.cache = copy.deepcopy(context.cache)
    return forked


def denoise_batch(
    model: Any,
    rows: Sequence[BatchRow],
    observe: BatchObserver | None = None,
    cancel: CancelToken | None = None,
) -> BatchOutcome:
    """Every row's canvases, the rows denoised together (see the module's docstring). Rows must share the
    sampling mode; each keeps its own sampler settings, constraints and generator."""
    if not rows:
        return BatchOutcome([])
    device = model.device
    canvas_length = int(model.config.canvas_length)
    vocab_size = int(model.config.text_config.vocab_size)
    batch = BatchOutcome([])
    with torch.inference_mode():
        contexts: dict[tuple[int, ...], EncodedContext] = {}
        states: list[_Row] = []
        for i, row in enumerate(rows):
            _check(cancel)
            context = contexts.get(row.prompt_ids)
            if context is None:  # one encode per distinct prompt
                t0 = time.perf_counter()
                context = EncodedContext(model)
                if row.prompt_ids:
                    context.append(torch.tensor([row.prompt_ids], dtype=torch.long, device=device))
                contexts[row.prompt_ids] = context
                batch.encodes += 1
                encode_s = time.perf_counter() - t0
            else:
                encode_s = 0.0
            state = _Row(i, row, context, device)
            state.outcome.encode_s = encode_s
            states.append(state)
        while not all(s.done for s in states):
            wave = [s for s in states if not s.done]
            for s in wave:
                _check(cancel)
                s.catch_up()
            starts = [s.start(vocab_size, canvas_length) for s in wave]
            finals = _denoise_wave(model, wave, starts, batch, observe, cancel)
            batch.waves += 1
            for s, argmax in zip(wave, finals, strict=True):
                s.finish(argmax)
    batch.rows = [s.outcome for s in states]
    return batch


class BatchCanvasCache(StaticCanvasCache):
    """Per-layer ``[context | canvas]`` buffers for a batch of rows, each row's context read from its own
    encoder cache and left-padded to the longest (:attr:`padding` says where, per layer)."""

    def __init__(self, caches: Sequence[Any], canvas_length: int) -> None:
        self.canvas_length = canvas_length
        self.keys, self.values, self.context_lengths = [], [], []
        self.padding: list[list[int]] = []  # per layer, each row's count of padded positions
        for layers in zip(*(c.layers for c in caches), strict=True):
            lengths = [int(layer.keys.shape[-2]) for layer in layers]
            longest = max(lengths)
            first = layers[0].keys
            shape = (len(layers), first.shape[1], longest + canvas_length, first.shape[-1])
            keys, values = first.new_zeros(shape), first.new_zeros(shape)
            for r, (layer, n) in enumerate(zip(layers, lengths, strict=True)):
                keys[r, :, longest - n : longest].copy_(layer.keys[0])
                values[r, :, longest - n : longest].copy_(layer.values[0])
            self.keys.append(keys)
            self.values.append(values)
            self.context_lengths.append(longest)
            self.padding.append([longest - n for n in lengths])

    def keep(self, rows: torch.Tensor) -> None:
        """Only ``rows`` (indices into the current batch) go on."""
        self.keys = [k.index_select(0, rows) for k in self.keys]
        self.values = [v.index_select(0, rows) for v in self.values]
        self.padding = [[pad[int(r)] for r in rows] for pad in self.padding]

    def masks(self, layer_types: Sequence[str], device: torch.device) -> dict[str, torch.Tensor | None]:
        """Per layer type, the decoder's attention mask: None where no row is padded (the single-canvas
        path's own: attend to everything), else (rows, 1, canvas, context + canvas) with padding masked."""
        out: dict[str, torch.Tensor | None] = {}
        for i, kind in enumerate(layer_types):
            if kind in out or i >= len(self.padding):
                continue
            pads = self.padding[i]
            if not any(pads):
                out[kind] = None
                continue
            width = self.context_lengths[i] + self.canvas_length
            index = torch.arange(width, device=device)
            visible = index[None, :] >= torch.tensor(pads, device=device)[:, None]  # (rows, width)
            out[kind] = visible[:, None, None, :].expand(len(pads), 1, self.canvas_length, width)
        return out


def _decoder_for(
    model: Any, cache: BatchCanvasCache, wave: Sequence[_Row], device: torch.device
) -> CanvasDecoder:
    """A decoder over the batch: each row's canvas positions follow its own context."""
    canvas_length = cache.canvas_length
    lengths = [s.context.length for s in wave]
    offsets = torch.tensor(lengths, dtype=torch.int32, device=device)[:, None]
    positions = offsets + torch.arange(canvas_length, dtype=torch.int32, device=device)[None]
    if len(set(lengths)) == 1:
        positions = positions[:1]  # one row's positions, broadcast: the single-canvas decoder's own
    types = model.config.get_text_config(decoder=True).layer_types
    masks = cache.masks(types, device)
    return CanvasDecoder(model, masks, wave[0].context.cache, positions)


def _denoise_wave(
    model: Any,
    wave: Sequence[_Row],
    starts: Sequence[_Start],
    batch: BatchOutcome,
    observe: BatchObserver | None,
    cancel: CancelToken | None,
) -> list[torch.Tensor]:
    """One canvas per row of ``wave``, denoised together; returns each row's final argmax (1, L)."""
    device = model.device
    canvas_length = int(model.config.canvas_length)
    cache = BatchCanvasCache([s.context.cache for s in wave], canvas_length)
    decoder = _decoder_for(model, cache, wave, device)
    vocab = decoder.vocab_size
    reference = wave[0].options.mode == "reference"
    rows = list(range(len(wave)))  # positions in ``wave`` of the rows still going
    tokens = torch.cat([st.tokens for st in starts])
    remaining = [st.first_step for st in starts]
    histories = [empty_history(s.options.sampler, (1, canvas_length), device) for s in wave]
    buffers = [None if reference else vocab_buffers((1, canvas_length, vocab), device) for _ in wave]
    finals: list[torch.Tensor] = [st.tokens for st in starts]
    self_cond: torch.Tensor | None = None
    with cache.installed(model):
        while rows:
            _check(cancel)
            t_step = time.perf_counter()
            logits = decoder(tokens, self_cond)
            batch.forwards += 1
            views: list[tuple[int, StepView]] = []
            next_rows: list[int] = []
            canvases: list[torch.Tensor] = []
            for i, r in enumerate(rows):
                s, st = wave[r], starts[r]
                cfg = s.options.sampler
                left = torch.tensor(remaining[r], device=device, dtype=torch.int32)
                row_logits = logits[i : i + 1]  # a view: read_step prepares it in place, as self-conditioning
                scored, accepted = read_step(row_logits, cfg, left, st.constraints, reference, buffers[r])
                drawn = (draw_reference if reference else draw_fast)(scored, accepted, s.generator)
                fresh = uniform_canvas((1, canvas_length), vocab, s.generator, device)
                canvas = next_canvas(accepted, drawn, fresh, st.constraints)
                finished = settled(histories[r], scored.argmax, scored.entropy, cfg.confidence_threshold)
                histories[r] = remember(histories[r], scored.argmax)
                finals[r] = scored.argmax
                s.outcome.forwards += 1
                if observe is not None:
                    step = st.first_step - remaining[r] + 1
                    view = StepView(
                        s.canvases,
                        step,
                        st.first_step,
                        scored.argmax[0],
                        accepted[0],
                        scored.entropy[0],
                        s.outcome.tokens,
                        st.tail,
                    )
                    views.append((s.index, view))
                remaining[r] -= 1
                if bool(finished.all()) or remaining[r] == 0:
                    continue  # this row has settled: it leaves the batch
                next_rows.append(i)
                canvases.append(canvas)
            # self-conditioning: each row's prepared logits (read_step changed them in place, row by row)
            cond = logits.to(decoder.self_cond_dtype)
            if observe is not None and views:
                observe(views)
            elapsed = time.perf_counter() - t_step
            batch.step_s.append(elapsed)
            for r in rows:
                wave[r].outcome.step_s.append(elapsed)
            if len(next_rows) < len(rows):
                if not next_rows:
                    break
                keep = torch.tensor(next_rows, device=device)
                cache.keep(keep)
                cond = cond.index_select(0, keep)
                rows = [rows[i] for i in next_rows]
                decoder = _decoder_for(model, cache, [wave[r] for r in rows], device)
            tokens = torch.cat(canvases)
            self_cond = cond
    return finals


def _check(cancel: CancelToken | None) -> None:
    if cancel is not None and cancel.cancelled:
        raise Cancelled()
