"""``VllmEngine``: a DiffusionGemma served by vLLM (or ``diffedit serve``), spoken to in vLLM's protocol.

The same job -> frames -> result interface as the in-process :class:`~diffedit.engine.engine.Engine` and
:class:`~diffedit.engine.remote.RemoteEngine`. The client keeps a local copy of the model's tokenizer and
prompt format (``--tokenizer DIR``: the checkpoint folder without its weights is enough; the bundled demo
model by default) and does what the in-process engine does around the denoising loop, canvas by canvas:

- the document context becomes the prompt as token ids (the checkpoint's infill or chat format, built
  locally, so the model reads exactly what it reads in-process), followed by the canvases written so far;
- each canvas is one or more ``POST /v1/completions`` with ``vllm_xargs``: ``diffusion_seed_canvas`` (the
  original text's tokens partly re-noised for a refine, held text and kept words in their slots, noise
  elsewhere, all drawn from the job's seed), ``diffusion_pinned`` (the held positions, so shape-true text and
  kept words come back verbatim), ``diffusion_max_steps`` (the job's steps);
- the answers' token ids (``return_tokens_as_token_ids``) are put together as the engine puts canvases
  together: end tokens, runs of shape-true blocks, slots, the text.

What does not travel: the forbidden tokens of a shape-true slot (no newline in a paragraph, the end only
inside a length band): vLLM has no per-position forbidden set (``diffusion_constrained`` is one allowed set
for the whole canvas), so over this protocol only the held positions are guaranteed. A polish is refused.

**Frames, honestly.** ``rewrite(job, on_frame)`` shows real canvases only:

- ``diffedit serve`` offers every step (its ``diffedit_frames`` extension, listed by ``GET /v1/models``):
  one streamed request per canvas, every step's real canvas;
- otherwise with ``chunk_steps`` k > 0 (default 4), a canvas is stepped k steps per request from the
  previous answer (the seed canvas), with the positions the model settled on pinned (held text, and every
  position whose token an answer kept unchanged from the answer before it), until the job's steps are spent
  or every position has settled: each frame is a canvas the server really computed;
- with ``chunk_steps`` 0 (or no ``on_frame``), one request per canvas and one frame per finished canvas:
  progress, never an invented denoising.
"""

from __future__ import annotations

import json
import math
import random
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.client import HTTPException, HTTPResponse
from pathlib import Path
from typing import Any

from diffedit.engine.remote import STEP_TIMEOUT_S, RemoteContextFormat, RemoteEngine, RemoteModel
from diffedit.engine.types import (
    BlockTemplate,
    Cancelled,
    CancelToken,
    EditRequest,
    EngineError,
    Frame,
    RewriteJob,
    RewriteResult,
    SlotOutcome,
    TokenReading,
)
from diffedit.engine.vllm_wire import FRAMES, Completion, completion_body, parse_completion
from diffedit.engine.wire import WireError, frame_from_json

DEFAULT_CHUNK_STEPS = 4
MAX_CANVASES = 8  # as the in-process engine: a rewrite may grow to twice the original, within this cap


@dataclass
class LocalModelFiles:
    """What the client needs of the model, read from a local folder without its weights: the tokenizer,
    the prompt format, the canvas, the vocabulary and the sampler's step default."""

    path: Path
    tokenizer: Any
    context_format: Any
    canvas_length: int
    vocab_size: int
    eos_ids: frozenset[int]
    pad_id: int
    default_steps: int
    _pieces: dict[int, str] = field(default_factory=dict)
    _classes: Any = None

    @classmethod
    def load(cls, path: str | Path | None = None) -> LocalModelFiles:
        import os

        from transformers import AutoTokenizer

        from diffedit.engine.context import format_for_checkpoint
        from diffedit.engine.loader import default_model_path

        folder = Path(path) if path is not None else default_model_path()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local files only
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            gen_path = folder / "generation_config.json"
            gen = json.loads(gen_path.read_text(encoding="utf-8")) if gen_path.is_file() else {}
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            fmt = format_for_checkpoint(folder, tokenizer)
        except (OSError, ValueError) as exc:
            raise EngineError(
                f"the model's tokenizer is needed here: {folder} does not hold it ({exc}); "
                "give the checkpoint folder (without its weights) with --tokenizer DIR"
            ) from exc
        eos = gen.get("eos_token_id", config.get("eos_token_id", tokenizer.eos_token_id))
        eos_ids = frozenset(int(e) for e in (eos if isinstance(eos, list) else [eos]) if e is not None)
        pad = gen.get("pad_token_id", config.get("pad_token_id", tokenizer.pad_token_id))
        text = config.get("text_config") or {}
        return cls(
            folder,
            tokenizer,
            fmt,
            int(config["canvas_length"]),
            int(text.get("vocab_size") or config.get("vocab_size")),
            eos_ids,
            int(pad if pad is not None else min(eos_ids)),
            int(gen.get("max_denoising_steps") or 48),
        )

    @property
    def end_ids(self) -> frozenset[int]:
        return frozenset(self.eos_ids | {self.pad_id})

    def piece(self, token_id: int) -> str:
        got = self._pieces.get(token_id)
        if got is None:
            got = str(self.tokenizer.decode([token_id], skip_special_tokens=True))
            self._pieces[token_id] = got
        return got

    def decode_raw(self, ids: list[int]) -> str:
        from diffedit.engine.constraints import printable

        return printable(str(self.tokenizer.decode(ids, skip_special_tokens=True)))

    def token_classes(self) -> Any:
        from diffedit.engine.constraints import TokenClasses

        if self._classes is None:
            self._classes = TokenClasses(self.tokenizer, self.vocab_size, self.end_ids)
        return self._classes


@dataclass
class _CanvasWork:
    """One canvas to write: its index over the job, held positions, the original to refine from."""

    index: int
    held: dict[int, int]
    warm: list[int] | None
    tail: str = ""


@dataclass
class _Tally:
    requests: int = 0
    steps: int = 0
    request_s: list[float] = field(default_factory=list)


class VllmEngine(RemoteEngine):
    """A served DiffusionGemma spoken to in vLLM's protocol (see the module docstring)."""

    def __init__(
        self,
        url: str,
        files: LocalModelFiles,
        api_key: str | None = None,
        key_env: str = "DIFFEDIT_API_KEY",
        chunk_steps: int = DEFAULT_CHUNK_STEPS,
    ) -> None:
        super().__init__(url, api_key, key_env)
        self.files = files
        self.tokenizer = files.tokenizer
        self.canvas_length = files.canvas_length
        self.chunk_steps = chunk_steps
        self.served_frames = False  # the server streams every step (diffedit serve's extension)
        self.protocol = "vllm"
        self.last_requests = 0  # how many completions the last rewrite took (benchmarks read it)

    @classmethod
    def connect(
        cls,
        url: str,
        api_key: str | None = None,
        key_env: str = "DIFFEDIT_API_KEY",
        files: LocalModelFiles | None = None,
        chunk_steps: int = DEFAULT_CHUNK_STEPS,
    ) -> VllmEngine:
        if not url.startswith(("http://", "https://")):
            raise EngineError(f"--server {url}: give a URL such as http://127.0.0.1:8000")
        engine = cls(url, files or LocalModelFiles.load(), api_key, key_env, chunk_steps)
        models = engine._get("/v1/models")
        data = models.get("data") or []
        if not data:
            raise EngineError(f"{engine.url} serves no model (GET /v1/models lists none)")
        m = data[0]
        engine.name = str(m["id"])
        local = engine.files
        for what, theirs, ours in (
            ("canvas length", m.get("canvas_length"), local.canvas_length),
            ("vocabulary", m.get("vocab_size"), local.vocab_size),
        ):
            if theirs is not None and int(theirs) != ours:
                raise EngineError(
                    f"the model at {engine.url} has a {what} of {theirs}, the local tokenizer's model "
                    f"({local.path}) {ours}: give the served model's folder with --tokenizer"
                )
        engine.served_frames = FRAMES in (m.get("extensions") or [])
        engine.loaded = RemoteModel(
            RemoteContextFormat(str(getattr(local.context_format, "name", ""))),
            m.get("quantization"),
            m.get("weight_bytes"),
            bool(m.get("demo_model", False)),
            local.canvas_length,
        )
        return engine

    def _explain(self, exc: urllib.error.HTTPError, what: str) -> EngineError:
        if exc.code in (404, 405):
            return EngineError(
                f"{self.url} has no OpenAI completions endpoint for {what} ({exc.code}): "
                "point --server at a vLLM serving DiffusionGemma, or a `diffedit serve`"
            )
        return super()._explain(exc, what)

    def _unreachable(self, exc: BaseException) -> EngineError:
        reason = getattr(exc, "reason", exc)
        return EngineError(f"cannot reach the server at {self.url} ({reason}): is it running there?")

    # -- requests ----------------------------------------------------------------------------------------

    def _open(self, body: dict[str, Any]) -> HTTPResponse:
        data = json.dumps(body).encode("utf-8")
        headers = self._headers() | {"Content-Type": "application/json"}
        url = self.url + "/v1/completions"
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        try:
            response: HTTPResponse = urllib.request.urlopen(request, timeout=STEP_TIMEOUT_S)
            return response
        except urllib.error.HTTPError as exc:
            raise self._explain(exc, "the completion") from exc
        except (urllib.error.URLError, OSError, HTTPException) as exc:
            raise self._unreachable(exc) from exc

    def _gone(self) -> EngineError:
        return EngineError(
            f"the server at {self.url} went away before the rewrite finished; nothing of it was kept"
        )

    def complete(self, body: dict[str, Any], tally: _Tally | None = None) -> Completion:
        """One completion, whole."""
        started = time.perf_counter()
        with self._open(body) as response:
            try:
                raw = response.read()
            except (TimeoutError, OSError, HTTPException) as exc:
                raise self._gone() from exc
        try:
            out = parse_completion(json.loads(raw))
        except (ValueError, WireError) as exc:
            raise EngineError(f"the server at {self.url} answered the completion unreadably: {exc}") from exc
        if tally is not None:
            tally.requests += 1
            tally.request_s.append(time.perf_counter() - started)
        return out

    def _events(self, body: dict[str, Any], cancel: CancelToken | None) -> Iterator[dict[str, Any]]:
        """A streamed completion's server-sent events, as JSON objects; closing it cancels the request."""
        with self._open(body | {"stream": True, FRAMES: True}) as response:
            while True:
                if cancel is not None and cancel.cancelled:
                    raise Cancelled()
                try:
                    line = response.readline()
                except (TimeoutError, OSError, HTTPException) as exc:
                    raise self._gone() from exc
                if not line:
                    raise self._gone()
                line = line.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    return
                try:
                    yield json.loads(data)
                except ValueError as exc:
                    raise EngineError(f"the server at {self.url} sent an event that is not JSON") from exc

    # -- the engine's interface --------------------------------------------------------------------------

    def rewrite(
        self,
        job: RewriteJob,
        on_frame: Callable[[Frame], None] | None = None,
        cancel: CancelToken | None = None,
        frame_interval_s: float = 0.0,
    ) -> RewriteResult:
        """Run ``job`` through the server; raises ``Cancelled`` or ``EngineError``."""
        started = time.perf_counter()
        files, s = self.files, job.settings
        if job.polish is not None:
            raise EngineError(
                "a polish does not run over vLLM's protocol yet: "
                "rewrite without it, or use a `diffedit serve`"
            )
        if s.sampling != "fast":
            raise EngineError("reference sampling runs in-process only: vLLM samples its own way")
        seed = s.seed if s.seed is not None else secrets.randbelow(2**31)
        fmt = files.context_format
        budget = min(s.context_tokens, fmt.context_tokens or s.context_tokens)
        context = fmt.build(files.tokenizer, job.request, budget)
        target_ids = list(files.tokenizer.encode(job.request.target, add_special_tokens=False))
        plan = self._plan(job)
        steps = s.steps or files.default_steps
        if s.strength < 1.0:  # a refine enters late: fewer steps, as in-process
            steps = max(1, min(steps, round(s.strength * steps)))
        tally = _Tally()
        prompt = list(context.input_ids)
        tokens: list[int] = []
        runs_kept: list[list[int]] = []
        canvases = 0
        eos = min(files.eos_ids)
        L = files.canvas_length

        def write(work: _CanvasWork) -> list[int]:
            _check(cancel)
            start = self._seed_canvas(work, seed, s.strength)
            return self._canvas(
                job.job_id, work, prompt, start, steps, seed, s.strength, tokens, on_frame, cancel, tally
            )

        if plan is None:
            from diffedit.engine.canvas import layout_canvases

            warm = layout_canvases(target_ids, L, eos, files.pad_id) if s.strength < 1.0 else []
            wanted = 2 * len(target_ids) + 16
            count = (
                max(1, math.ceil(s.max_new_tokens / L))
                if s.max_new_tokens is not None
                else max(1, min(MAX_CANVASES, math.ceil(wanted / L)))
            )
            for k in range(count):
                block = write(_CanvasWork(canvases, {}, warm[k] if k < len(warm) else None))
                canvases += 1
                ends = [i for i, t in enumerate(block) if t in files.eos_ids]
                if ends:
                    tokens += block[: ends[0] + 1] + [files.pad_id] * (L - ends[0] - 1)
                    break
                tokens += block
                prompt += block
        else:
            for run in plan.runs:
                kept: list[int] = []
                for k in range(run.canvases):
                    lo, hi = k * L, (k + 1) * L
                    held = {p - lo: t for p, t in run.held.items() if lo <= p < hi}
                    block = write(_CanvasWork(canvases, held, run.warm_start(k), run.tail))
                    canvases += 1
                    ends = [i for i, t in enumerate(block) if t in files.eos_ids]
                    if ends:
                        written = block[: ends[0]]
                        kept += written
                        tokens += written
                        prompt += written
                        break
                    kept += block
                    tokens += block
                    prompt += block
                runs_kept.append(kept)
        self.last_requests = tally.requests
        return self._result(job, plan, tokens, runs_kept, seed, context.truncated, started, tally, canvases)

    def _plan(self, job: RewriteJob) -> Any:
        templates: tuple[BlockTemplate, ...] | None = job.templates
        if templates is None:
            return None
        from diffedit.engine.constraints import compile_templates

        f = self.files
        classes = f.token_classes()
        return compile_templates(templates, f.tokenizer, classes, f.canvas_length, min(f.eos_ids), f.pad_id)

    def _seed_canvas(self, work: _CanvasWork, seed: int, strength: float, draw: int = 0) -> list[int]:
        """A canvas a request starts from, drawn from the job's seed (``draw``: the how-many-th for this
        canvas): noise, or the original with a share ``strength`` of its positions re-noised (a refine);
        held tokens laid in."""
        rng = random.Random(f"diffedit:{seed}:{work.index}:{draw}")
        L, vocab = self.files.canvas_length, self.files.vocab_size
        canvas = [rng.randrange(vocab) for _ in range(L)]
        if work.warm is not None and strength < 1.0:
            keep = set(rng.sample(range(L), L - round(strength * L)))
            canvas = [work.warm[p] if p in keep else t for p, t in enumerate(canvas)]
        for p, t in work.held.items():
            canvas[p] = t
        return canvas

    def _canvas(
        self,
        job_id: int,
        work: _CanvasWork,
        prompt: list[int],
        start: list[int],
        steps: int,
        seed: int,
        strength: float,
        written: list[int],
        on_frame: Callable[[Frame], None] | None,
        cancel: CancelToken | None,
        tally: _Tally,
    ) -> list[int]:
        """One canvas written on the server: its final tokens (canvas-length ids)."""
        frames = _Frames(self.files, job_id, work, written) if on_frame is not None else None
        request_seed = (seed * 1_000_003 + work.index * 7919) % 2**31

        def body(canvas: list[int], pinned: list[int], k: int, chunk: int) -> dict[str, Any]:
            return completion_body(
                self.name,
                prompt,
                self.files.canvas_length,
                (request_seed + chunk * 104_729) % 2**31,
                seed_canvas=canvas,
                pinned=pinned,
                max_steps=k,
                ignore_eos=True,  # the whole canvas comes back; the client finds the end as the engine does
            )

        held = sorted(work.held)
        if frames is not None and on_frame is not None and self.served_frames:
            return self._streamed(body(start, held, steps, 0), frames, on_frame, cancel, tally, steps)
        if frames is None or on_frame is None or self.chunk_steps <= 0:
            out = list(self.complete(body(start, held, steps, 0), tally).token_ids)
            tally.steps += steps
            if frames is not None and on_frame is not None:  # progress: the finished canvas, once
                on_frame(frames.frame(out, set(range(len(out))), steps, steps, final=False))
            return out
        # Chunks: k steps per request. Between requests the client does what the sampler does between
        # steps: positions it accepted stay (pinned), the rest re-noised (a fresh draw from the job's seed).
        # A position is accepted once two answers, each denoised from different noise there, agree on it.
        pinned = set(held)
        current, last, used, chunk = start, None, 0, 0
        while used < steps:
            _check(cancel)
            k = min(self.chunk_steps, steps - used)
            out = list(self.complete(body(current, sorted(pinned), k, chunk), tally).token_ids)
            used, chunk = used + k, chunk + 1
            tally.steps += k
            if last is not None:
                pinned |= {p for p, (a, b) in enumerate(zip(out, last, strict=True)) if a == b}
            on_frame(frames.frame(out, pinned, used, steps, final=False))
            last = out
            if len(pinned) == len(out):
                break  # every position has settled: the rest of the steps would change nothing
            fresh = self._seed_canvas(work, seed, strength, draw=chunk)
            current = [out[p] if p in pinned else fresh[p] for p in range(len(out))]
        return out

    def _streamed(
        self,
        body: dict[str, Any],
        frames: _Frames,
        on_frame: Callable[[Frame], None],
        cancel: CancelToken | None,
        tally: _Tally,
        steps: int,
    ) -> list[int]:
        started = time.perf_counter()
        for event in self._events(body, cancel):
            if "error" in event:
                raise EngineError(f"the server could not rewrite: {event['error'].get('message', '')}")
            if event.get("object") == "diffedit.frame":
                f = frame_from_json(event)
                if not f.final:
                    accepted = {i for i, a in enumerate(f.accepted) if a}
                    ids = list(f.token_ids)
                    on_frame(frames.frame(ids, accepted, f.step, f.total_steps, False, f.entropy))
                continue
            out = parse_completion(event)
            tally.requests += 1
            tally.steps += steps
            tally.request_s.append(time.perf_counter() - started)
            return list(out.token_ids)
        raise self._gone()

    def _result(
        self,
        job: RewriteJob,
        plan: Any,
        tokens: list[int],
        runs_kept: list[list[int]],
        seed: int,
        truncated: bool,
        started: float,
        tally: _Tally,
        canvases: int,
    ) -> RewriteResult:
        files = self.files
        slots: tuple[SlotOutcome, ...] = ()
        if plan is None:
            from diffedit.engine.canvas import trim_at_end

            kept = trim_at_end(tokens, files.end_ids)
            text = files.decode_raw(kept).strip("\n").rstrip()
            if not job.request.target[:1].isspace():
                text = text.lstrip()
            written, ends = len(kept), 1
        else:
            out: list[SlotOutcome] = []
            for run, kept_run in zip(plan.runs, runs_kept, strict=True):
                for slot, ids in zip(run.slots, run.slot_ids(kept_run), strict=True):
                    out.append(
                        SlotOutcome(
                            files.decode_raw(ids),
                            len(ids),
                            slot.original_tokens,
                            slot.min_tokens,
                            slot.max_tokens,
                        )
                    )
            slots = tuple(out)
            text = files.decode_raw(tokens) + plan.trailing
            written, ends = sum(sl.tokens for sl in slots), len(plan.runs)
        return RewriteResult(
            job_id=job.job_id,
            text=text,
            token_ids=tuple(tokens),
            steps=tally.steps,
            canvases=canvases,
            tokens_per_forward=(written + ends) / max(1, tally.steps),
            encode_ms=0.0,
            step_ms_median=sum(tally.request_s) / max(1, tally.steps) * 1000,  # a request's time per step
            total_s=time.perf_counter() - started,
            seed=seed,
            model=self.name,
            truncated_context=truncated,
            compiled=None,
            slots=slots,
        )

    def inspect(
        self,
        request: EditRequest,
        top_k: int = 5,
        context_tokens: int = 1024,
        cancel: CancelToken | None = None,
    ) -> tuple[TokenReading, ...]:
        """The confidence view over vLLM: each canvas of ``request.target`` read once
        (``diffusion_read_only``, every position pinned): the log-probability of each token and its likeliest
        alternatives.

        ``entropy`` is summed over the returned alternatives only (a lower bound of the entropy): vLLM returns
        the top ``logprobs`` per position, not the whole distribution."""
        from diffedit.engine.canvas import layout_canvases

        files = self.files
        fmt = files.context_format
        budget = min(context_tokens, fmt.context_tokens or context_tokens)
        prompt = list(fmt.build(files.tokenizer, request, budget).input_ids)
        ids, spans = token_spans(files.tokenizer, request.target)
        if not ids:
            return ()
        L = files.canvas_length
        readings: list[TokenReading] = []
        for n, canvas in enumerate(layout_canvases(ids, L, min(files.eos_ids), files.pad_id)):
            _check(cancel)
            body = completion_body(
                self.name,
                prompt,
                L,
                0,
                seed_canvas=canvas,
                pinned=list(range(L)),
                max_steps=1,
                read_only=True,
                logprobs=top_k,
            )
            out = self.complete(body)
            for j in range(L):
                i = n * L + j
                if i >= len(ids):
                    break
                lp = out.token_logprobs[j]
                alternatives = out.top_logprobs[j] if j < len(out.top_logprobs) else {}
                row = sorted(alternatives.items(), key=lambda kv: -kv[1])
                top = tuple((files.piece(t), math.exp(v)) for t, v in row[:top_k])
                entropy = -sum(p * math.log(p) for _, p in top if p > 0)
                start, end = spans[i]
                readings.append(
                    TokenReading(ids[i], start, end, math.nan if lp is None else math.exp(lp), entropy, top)
                )
            prompt += canvas
        return tuple(readings)


class _Frames:
    """Frames of one canvas from its token ids, as the in-process engine builds them: the text so far (the
    finished canvases), this canvas's pieces up to its end, then the original text not written yet."""

    def __init__(self, files: LocalModelFiles, job_id: int, work: _CanvasWork, written: list[int]) -> None:
        self.files = files
        self.job_id = job_id
        self.work = work
        self.head = str(files.tokenizer.decode(written, skip_special_tokens=True))
        self.previous: list[int] | None = None

    def frame(
        self,
        ids: list[int],
        accepted: set[int],
        step: int,
        total: int,
        final: bool,
        entropy: tuple[float, ...] | None = None,
    ) -> Frame:
        pieces: list[str] = []
        spans: list[tuple[int, int]] = []
        pos, ended = len(self.head), False
        for t in ids:
            ended = ended or t in self.files.end_ids
            piece = "" if ended else self.files.piece(t)
            pieces.append(piece)
            spans.append((pos, pos + len(piece)))
            pos += len(piece)
        before = self.previous
        changed = [True] * len(ids) if before is None else [a != b for a, b in zip(ids, before, strict=True)]
        self.previous = ids
        return Frame(
            job_id=self.job_id,
            canvas_index=self.work.index,
            step=step,
            total_steps=total,
            token_ids=tuple(ids),
            pieces=tuple(pieces),
            spans=tuple(spans),
            accepted=tuple(i in accepted for i in range(len(ids))),
            changed=tuple(changed),
            entropy=entropy if entropy is not None else (0.0,) * len(ids),
            text=self.head + "".join(pieces) + self.work.tail,
            final=final,
        )


def token_spans(tokenizer: Any, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """``text``'s tokens and their character spans, tiling ``text`` (as ``Engine.token_spans``)."""
    if not text:
        return [], []
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, ends = [int(i) for i in enc["input_ids"]], [int(e) for _, e in enc["offset_mapping"]]
    else:
        ids = list(tokenizer.encode(text, add_special_tokens=False))
        ends = [len(str(tokenizer.decode(ids[: i + 1]))) for i in range(len(ids))]
    spans, done = [], 0
    for i, end in enumerate(ends):
        end = len(text) if i == len(ends) - 1 else min(len(text), max(done, end))
        spans.append((done, end))
        done = end
    return ids, spans


def _check(cancel: CancelToken | None) -> None:
    if cancel is not None and cancel.cancelled:
        raise Cancelled()
