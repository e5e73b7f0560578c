"""The vLLM protocol's JSON shapes: an OpenAI-style completion with vLLM's per-request diffusion fields.

No torch here: the client (:mod:`diffedit.engine.vllm_client`) builds requests and reads answers with it, and
``diffedit serve`` checks requests with it before its engine sees them.

The fields, as vLLM documents them (vllm-project/vllm, ``examples/features/structured_diffusion/README.md``
at commit 02bd2191d211; its example client ``structured_server.py`` at 34d9abbd213c; the checks of
``validate_diffusion_sampling_params``), travel in ``vllm_xargs``:

- ``diffusion_seed_canvas``: exactly canvas-length token ids in ``[0, vocab)``, replacing the random initial
  canvas;
- ``diffusion_pinned``: canvas positions held at their seed value on every step (needs a seed canvas);
- ``diffusion_max_steps``: a positive number of denoising steps before the canvas is emitted;
- ``diffusion_read_only``: emit the argmax canvas at the cap and return temperature-1 log-probabilities at
  every position (the OpenAI server narrows JSON booleans to 0/1, so 0/1 are booleans too);
- ``diffusion_constrained``: sample and normalise over the request's ``logprob_token_ids`` only;
- ``diffusion_canvas_length``: a narrower canvas for this request.

The prompt goes as token ids (as the example does for its continuations), so the checkpoint's prompt format
(infill or chat template, built locally with the same tokenizer) reaches the model exactly. Answers carry
their tokens as ``"token_id:N"`` strings in ``choices[0].logprobs.tokens`` (``return_tokens_as_token_ids``),
read as the example reads them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from diffedit.engine.wire import PROTOCOL, WireError

SEED_CANVAS = "diffusion_seed_canvas"
PINNED = "diffusion_pinned"
MAX_STEPS = "diffusion_max_steps"
READ_ONLY = "diffusion_read_only"
CONSTRAINED = "diffusion_constrained"
CANVAS_LENGTH = "diffusion_canvas_length"
XARGS = (SEED_CANVAS, PINNED, MAX_STEPS, READ_ONLY, CONSTRAINED, CANVAS_LENGTH)
FRAMES = "diffedit_frames"  # diffedit serve's extension: stream every denoising step (vLLM has no such field)
TOKEN_PREFIX = "token_id:"


@dataclass(frozen=True)
class CompletionRequest:
    """One completion as the server runs it: the prompt's ids and the diffusion fields, checked."""

    prompt_ids: tuple[int, ...]
    max_tokens: int
    seed: int | None = None
    seed_canvas: tuple[int, ...] | None = None
    pinned: tuple[int, ...] = ()
    max_steps: int | None = None
    read_only: bool = False
    constrained: bool = False
    logprobs: int | None = None  # top alternatives per position; None: no logprobs
    logprob_token_ids: tuple[int, ...] = ()
    ignore_eos: bool = False
    stream: bool = False
    frames: bool = False  # diffedit serve's extension (with stream): every step as an event
    model: str = ""


@dataclass(frozen=True)
class Completion:
    """A completion's answer as the client reads it."""

    token_ids: tuple[int, ...]
    token_logprobs: tuple[float | None, ...]  # of each emitted token, where the server returned them
    top_logprobs: tuple[dict[int, float], ...]  # per position, where returned
    finish_reason: str
    text: str


def is_completion_body(body: dict[str, Any]) -> bool:
    """A vLLM/OpenAI completion rather than a ``diffedit-1`` job: no ``"protocol": "diffedit-1"`` and a
    prompt that is token ids or text, not diffedit's ``{prefix, target, suffix}`` object."""
    return body.get("protocol") != PROTOCOL and not isinstance(body.get("prompt"), dict)


def completion_body(
    model: str,
    prompt_ids: list[int],
    max_tokens: int,
    seed: int | None,
    seed_canvas: list[int] | None = None,
    pinned: list[int] | None = None,
    max_steps: int | None = None,
    read_only: bool = False,
    logprobs: int | None = 0,
    ignore_eos: bool = False,
) -> dict[str, Any]:
    """The request body of ``POST /v1/completions`` for one canvas (see the module docstring)."""
    xargs: dict[str, Any] = {}
    if seed_canvas is not None:
        xargs[SEED_CANVAS] = [int(t) for t in seed_canvas]
    if pinned:
        xargs[PINNED] = sorted(int(p) for p in pinned)
    if max_steps is not None:
        xargs[MAX_STEPS] = int(max_steps)
    if read_only:
        xargs[READ_ONLY] = True
    body: dict[str, Any] = {
        "model": model,
        "prompt": [int(t) for t in prompt_ids],
        "max_tokens": int(max_tokens),
        "return_tokens_as_token_ids": True,
    }
    if logprobs is not None:
        body["logprobs"] = int(logprobs)
    if seed is not None:
        body["seed"] = int(seed)
    if ignore_eos:
        body["ignore_eos"] = True
    if xargs:
        body["vllm_xargs"] = xargs
    return body


def _token_id(token: str) -> int:
    if not token.startswith(TOKEN_PREFIX):
        raise WireError(f"a token {token!r} is not in the form token_id:N (return_tokens_as_token_ids)")
    return int(token[len(TOKEN_PREFIX) :])


def parse_completion(obj: dict[str, Any]) -> Completion:
    """The first choice of a completion answer; ``WireError`` names what is missing."""
    try:
        choice = obj["choices"][0]
        logprobs = choice.get("logprobs") or {}
        if choice.get("token_ids") is not None:
            ids = tuple(int(t) for t in choice["token_ids"])
        elif logprobs.get("tokens") is not None:
            ids = tuple(_token_id(str(t)) for t in logprobs["tokens"])
        else:
            raise WireError(
                "the completion carries no token ids: the server must honour logprobs with "
                "return_tokens_as_token_ids"
            )
        raw_lp = logprobs.get("token_logprobs") or [None] * len(ids)
        token_logprobs = tuple(None if v is None else float(v) for v in raw_lp)
        top = tuple(
            {_token_id(str(k)): float(v) for k, v in (row or {}).items()}
            for row in (logprobs.get("top_logprobs") or ())
        )
        finish = str(choice.get("finish_reason") or "")
        return Completion(ids, token_logprobs, top, finish, str(choice["text"]))
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, WireError):
            raise
        raise WireError(f"the server's completion is not in the OpenAI shape: {exc!r}") from exc


# ---------------------------------------------------------------- the server's side


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _flag(xargs: dict[str, Any], name: str) -> bool:
    value = xargs.get(name)
    if value is None:
        return False
    if not (isinstance(value, (bool, int)) and value in (0, 1)):
        raise WireError(f"vllm_xargs.{name} must be a boolean (or 0/1), got {value!r}")
    return bool(value)


def parse_completion_request(
    body: dict[str, Any], canvas_length: int, vocab_size: int, encode: Any = None
) -> CompletionRequest:
    """A completion body checked as vLLM checks it (the seed canvas's ids and length, pinned positions inside
    the canvas and only with a seed canvas, a positive step cap, 0/1 flags); ``WireError`` names the problem.

    ``encode(text) -> ids`` tokenizes a text prompt (token ids are taken as they are).
    """
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (list, str)):
        prompt = prompt[0]  # the OpenAI API's batch of one
    if isinstance(prompt, str):
        if encode is None:
            raise WireError("send the prompt as token ids")
        ids = tuple(int(t) for t in encode(prompt))
    elif isinstance(prompt, list) and all(_is_int(t) for t in prompt):
        ids = tuple(prompt)
    else:
        raise WireError("prompt must be token ids (a list of integers) or a text")
    if not ids:
        raise WireError("prompt is empty: the model needs at least one token of context")
    if any(not 0 <= t < vocab_size for t in ids):
        raise WireError(f"prompt token ids must be in [0, {vocab_size})")

    xargs = body.get("vllm_xargs") or {}
    if not isinstance(xargs, dict):
        raise WireError("vllm_xargs must be an object")
    unknown = sorted(k for k in xargs if k.startswith("diffusion_") and k not in XARGS)
    if unknown:
        raise WireError(f"unknown diffusion fields in vllm_xargs: {', '.join(unknown)}")
    width = xargs.get(CANVAS_LENGTH)
    if width is not None and not (_is_int(width) and 0 < width <= canvas_length):
        raise WireError(
            f"vllm_xargs.{CANVAS_LENGTH} must be a positive integer no larger than the served canvas "
            f"({canvas_length})"
        )
    if width is not None and width != canvas_length:
        raise WireError(
            f"diffedit serve runs the served canvas only ({canvas_length} tokens): omit {CANVAS_LENGTH}"
        )

    seed_canvas = xargs.get(SEED_CANVAS)
    if seed_canvas is not None:
        if not (isinstance(seed_canvas, list) and all(_is_int(t) for t in seed_canvas)):
            raise WireError(f"vllm_xargs.{SEED_CANVAS} must be a list of token ids")
        if any(not 0 <= t < vocab_size for t in seed_canvas):
            raise WireError(f"vllm_xargs.{SEED_CANVAS} ids must be in [0, {vocab_size})")
        if len(seed_canvas) != canvas_length:
            raise WireError(
                f"vllm_xargs.{SEED_CANVAS} must hold exactly {canvas_length} ids, got {len(seed_canvas)}"
            )
    pinned = xargs.get(PINNED)
    if pinned is not None:
        if not (isinstance(pinned, list) and all(_is_int(p) for p in pinned)):
            raise WireError(f"vllm_xargs.{PINNED} must be a list of canvas positions")
        if seed_canvas is None:
            raise WireError(f"vllm_xargs.{PINNED} needs a {SEED_CANVAS} to hold")
        if any(not 0 <= p < canvas_length for p in pinned):
            raise WireError(f"vllm_xargs.{PINNED} positions must lie inside the canvas [0, {canvas_length})")
    max_steps = xargs.get(MAX_STEPS)
    if max_steps is not None and not (_is_int(max_steps) and max_steps > 0):
        raise WireError(f"vllm_xargs.{MAX_STEPS} must be a positive integer, got {max_steps!r}")
    read_only = _flag(xargs, READ_ONLY)
    constrained = _flag(xargs, CONSTRAINED)

    logprob_ids = body.get("logprob_token_ids") or []
    if not (isinstance(logprob_ids, list) and all(_is_int(t) and 0 <= t < vocab_size for t in logprob_ids)):
        raise WireError(f"logprob_token_ids must be token ids in [0, {vocab_size})")
    if constrained and not logprob_ids:
        raise WireError(f"vllm_xargs.{CONSTRAINED} needs logprob_token_ids: they are the allowed set")

    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        max_tokens = canvas_length
    if not (_is_int(max_tokens) and max_tokens > 0):
        raise WireError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    ignore_eos = body.get("ignore_eos", False)
    if not isinstance(ignore_eos, bool):
        raise WireError("ignore_eos must be a boolean")
    if read_only:  # one canvas is the whole output, and a drawn end token does not end it (as vLLM)
        max_tokens, ignore_eos = min(max_tokens, canvas_length), True
    logprobs = body.get("logprobs")
    if logprobs is not None and not (_is_int(logprobs) and 0 <= logprobs <= 20):
        raise WireError(f"logprobs must be an integer from 0 to 20, got {logprobs!r}")
    seed = body.get("seed")
    if seed is not None and not _is_int(seed):
        raise WireError(f"seed must be an integer, got {seed!r}")
    n = body.get("n", 1)
    if n != 1:
        raise WireError("diffedit serve answers one choice per request (n = 1)")
    return CompletionRequest(
        prompt_ids=ids,
        max_tokens=max_tokens,
        seed=seed,
        seed_canvas=None if seed_canvas is None else tuple(seed_canvas),
        pinned=() if pinned is None else tuple(pinned),
        max_steps=max_steps,
        read_only=read_only,
        constrained=constrained,
        logprobs=logprobs,
        logprob_token_ids=tuple(logprob_ids),
        ignore_eos=ignore_eos,
        stream=bool(body.get("stream", False)),
        frames=bool(body.get(FRAMES, False)),
        model=str(body.get("model") or ""),
    )


def completion_answer(
    model: str,
    request_id: str,
    created: int,
    prompt_tokens: int,
    token_ids: list[int],
    text: str,
    finish_reason: str,
    token_logprobs: list[float] | None = None,
    top_logprobs: list[dict[int, float]] | None = None,
) -> dict[str, Any]:
    """An OpenAI completion answer, tokens as ``token_id:N`` (as vLLM returns them with
    ``return_tokens_as_token_ids``)."""
    logprobs = {
        "tokens": [f"{TOKEN_PREFIX}{t}" for t in token_ids],
        "token_logprobs": token_logprobs if token_logprobs is not None else [None] * len(token_ids),
        "top_logprobs": None
        if top_logprobs is None
        else [{f"{TOKEN_PREFIX}{t}": _finite(v) for t, v in row.items()} for row in top_logprobs],
        "text_offset": None,
    }
    return {
        "id": request_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "text": text,
                "token_ids": list(token_ids),
                "logprobs": logprobs,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(token_ids),
            "total_tokens": prompt_tokens + len(token_ids),
        },
    }


def _finite(v: float) -> float:
    return v if math.isfinite(v) else -9999.0  # JSON has no -inf
