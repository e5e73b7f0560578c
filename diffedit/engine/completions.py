"""vLLM's completion semantics on diffedit's engine: what ``diffedit serve`` runs for a vLLM-protocol body.

A request (:class:`diffedit.engine.vllm_wire.CompletionRequest`) is a prompt of token ids and the diffusion
fields. Generation denoises canvases after the prompt, the first one starting from ``diffusion_seed_canvas``
(else uniform noise from the request's ``seed``) at the top of a ``diffusion_max_steps``-step schedule, its
``diffusion_pinned`` positions held at their seed value on every step (the held constraints of
:class:`diffedit.engine.sampling.CanvasConstraints`); canvases follow until one holds an end token (unless
``ignore_eos``) or ``max_tokens`` are written. A read-only request reads one canvas once: the argmax canvas
(pinned positions keep their seed token) and temperature-1 log-probabilities at every position, normalised
over ``logprob_token_ids`` with ``diffusion_constrained``.

What vLLM accepts and ``diffedit serve`` does not (refused with a 400 naming it, never approximated): a
read-only request of more than one step, ``diffusion_constrained`` outside read-only, and a narrower canvas.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from diffedit.engine.decoder import CanvasDecoder, EncodedContext
from diffedit.engine.denoise import DenoiseOptions, denoise
from diffedit.engine.sampling import uniform_canvas
from diffedit.engine.types import Cancelled, CancelToken, EngineError, Frame
from diffedit.engine.vllm_wire import CompletionRequest

if TYPE_CHECKING:
    from diffedit.engine.engine import Engine


@dataclass(frozen=True)
class CompletionOutput:
    token_ids: list[int]
    text: str
    finish_reason: str  # "stop" (an end token) or "length"
    token_logprobs: list[float] | None = None  # read-only: of each emitted token
    top_logprobs: list[dict[int, float]] | None = None  # read-only with logprobs > 0
    steps: int = 0


def unsupported(request: CompletionRequest) -> str | None:
    """Why ``diffedit serve`` cannot run ``request`` as vLLM would, or None."""
    if request.read_only and (request.max_steps or 1) != 1:
        return "diffedit serve reads a read-only canvas in one step: send diffusion_max_steps 1 (or omit it)"
    if request.constrained and not request.read_only:
        return "diffedit serve applies diffusion_constrained to read-only requests only"
    return None


def run_completion(
    engine: Engine,
    request: CompletionRequest,
    on_frame: Callable[[Frame], None] | None = None,
    cancel: CancelToken | None = None,
) -> CompletionOutput:
    """Run one checked completion request; raises ``Cancelled`` or ``EngineError``."""
    why = unsupported(request)
    if why is not None:
        raise EngineError(why)
    generator = torch.Generator(device=engine.device).manual_seed(
        request.seed if request.seed is not None else int(torch.seed() % 2**63)
    )
    if request.read_only:
        with engine.failures():
            return _read(engine, request, generator, cancel)
    from diffedit.engine.engine import _FrameEmitter

    sampler = dataclasses.replace(engine.defaults, max_steps=request.max_steps or engine.defaults.max_steps)
    options = DenoiseOptions(
        sampler,
        engine.eos_ids,
        engine.pad_id,
        max_canvases=math.ceil(request.max_tokens / engine.canvas_length),
        seed_canvas=request.seed_canvas,
        pinned=request.pinned,
        stop_at_end=not request.ignore_eos,
    )
    observe = _FrameEmitter(engine, 0, on_frame, 0.0) if on_frame is not None else None
    with engine.failures():
        outcome = denoise(engine.model, list(request.prompt_ids), options, generator, observe, cancel)
    tokens = outcome.tokens[: request.max_tokens]
    finish = "length"
    if not request.ignore_eos:
        end = next((i for i, t in enumerate(tokens) if t in engine.eos_ids), None)
        if end is not None:
            tokens, finish = tokens[: end + 1], "stop"
    text = engine.decode_raw(tokens)
    if observe is not None:
        observe.emit_final(text)
    return CompletionOutput(tokens, text, finish, steps=outcome.forwards)


def _read(
    engine: Engine, request: CompletionRequest, generator: torch.Generator, cancel: CancelToken | None
) -> CompletionOutput:
    """One decoder forward over the seed canvas (no self-conditioning: there is no earlier step)."""
    if cancel is not None and cancel.cancelled:
        raise Cancelled()
    model, device = engine.model, torch.device(engine.device)
    length = engine.canvas_length
    vocab = int(model.config.text_config.vocab_size)
    if request.seed_canvas is not None:
        canvas = torch.tensor([list(request.seed_canvas)], dtype=torch.long, device=device)
    else:
        canvas = uniform_canvas((1, length), vocab, generator, device)
    with torch.inference_mode():
        context = EncodedContext(model)
        context.append(torch.tensor([list(request.prompt_ids)], dtype=torch.long, device=device))
        masks, positions = context.canvas_inputs(device)
        logits = CanvasDecoder(model, masks, context.cache, positions)(canvas, None)[0].float()
        if request.constrained:  # normalised over the allowed set only
            allowed = torch.tensor(sorted(set(request.logprob_token_ids)), device=device)
            masked = torch.full_like(logits, -math.inf)
            masked[:, allowed] = logits[:, allowed]
            logits = masked
        logp = torch.log_softmax(logits, dim=-1)
        emitted = logp.argmax(-1)
        if request.pinned:
            at = torch.tensor(sorted(set(request.pinned)), device=device)
            emitted[at] = canvas[0, at]
        chosen = logp.gather(-1, emitted[:, None]).squeeze(-1)
        top: list[dict[int, float]] | None = None
        if request.logprobs:
            values, ids = logp.topk(request.logprobs, dim=-1)
            top = [
                dict(zip(row_ids, row_values, strict=True))
                for row_ids, row_values in zip(ids.tolist(), values.tolist(), strict=True)
            ]
            for i, t in enumerate(emitted.tolist()):  # the emitted token is always among them (as vLLM)
                top[i].setdefault(int(t), float(chosen[i]))
    n = request.max_tokens
    tokens = [int(t) for t in emitted.tolist()][:n]
    return CompletionOutput(
        tokens,
        engine.decode_raw(tokens),
        "length",
        [float(v) for v in chosen.tolist()][:n],
        None if top is None else top[:n],
        steps=1,
    )


def describe(engine: Any) -> dict[str, Any]:
    """What ``GET /v1/models`` adds for vLLM-protocol clients: the canvas and vocabulary they must match."""
    return {
        "canvas_length": engine.canvas_length,
        "vocab_size": int(engine.model.config.text_config.vocab_size),
        "max_denoising_steps": engine.defaults.max_steps,
        "extensions": ["diffedit_frames"],
    }
