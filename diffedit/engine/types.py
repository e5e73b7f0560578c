"""The engine's message shapes: a job goes in, frames come out, then one result. No Qt, no torch here."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class EditRequest:
    """One rewrite: the text before the target, the target itself, the text after, and an instruction."""

    prefix: str
    target: str
    suffix: str
    instruction: str = ""

    @classmethod
    def from_document(cls, text: str, start: int, end: int, instruction: str = "") -> EditRequest:
        if not 0 <= start <= end <= len(text):
            raise ValueError(f"target span {start}..{end} is outside the document (length {len(text)})")
        return cls(text[:start], text[start:end], text[end:], instruction)


SamplingMode = Literal["fast", "reference"]


class EngineError(Exception):
    """A failure the user should read: says what went wrong and what to do about it."""


class ModelLoadError(EngineError):
    """The model folder is missing, is not a DiffusionGemma checkpoint, or its weights do not load."""


class SettingsError(EngineError, ValueError):
    """A generation setting outside its range: names the setting, the value and the range allowed."""


class KeepRefused(EngineError):
    """A kept phrase that cannot be held: not inside a slot of the target, or too long for its block."""


class Cancelled(Exception):
    """The job was cancelled between two steps; nothing of it is left behind."""


class CancelToken:
    """Thread-safe flag the engine reads between denoising steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass(frozen=True)
class GenerationSettings:
    """Per-job knobs; ``None`` means the checkpoint's generation_config default."""

    steps: int | None = None
    strength: float = 1.0
    seed: int | None = None
    sampling: SamplingMode = "fast"
    max_new_tokens: int | None = None
    context_tokens: int = 1024
    entropy_bound: float | None = None
    t_min: float | None = None
    t_max: float | None = None

    def __post_init__(self) -> None:
        """Every setting is checked here, once, wherever the settings come from (editor, CLI, a script)."""
        if self.steps is not None and self.steps < 1:
            raise SettingsError(f"steps must be at least 1 (got {self.steps})")
        if not 0.0 < self.strength <= 1.0:
            raise SettingsError(f"strength must be in (0, 1] (got {self.strength})")
        if self.sampling not in ("fast", "reference"):
            raise SettingsError(f"sampling must be 'fast' or 'reference' (got {self.sampling!r})")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise SettingsError(f"max_new_tokens must be at least 1 (got {self.max_new_tokens})")
        if self.context_tokens < 1:
            raise SettingsError(f"context_tokens must be at least 1 (got {self.context_tokens})")
        if self.entropy_bound is not None and not self.entropy_bound >= 0.0:
            raise SettingsError(f"entropy_bound must be at least 0 (got {self.entropy_bound})")
        for name, t in (("t_min", self.t_min), ("t_max", self.t_max)):
            if t is not None and not t > 0.0:
                raise SettingsError(f"{name} must be above 0 (got {t}): the logits are divided by it")


@dataclass(frozen=True)
class HeldText:
    """Text a rewrite keeps verbatim (a heading's ``## ``, a fence line, a table's ``|``): laid into the
    canvas as held tokens, shown as accepted from the first frame, never drawn."""

    text: str


@dataclass(frozen=True)
class KeptText:
    """Words of a ``FreeText``'s original the rewrite keeps verbatim: ``original[start:start + len(text)]``.

    The engine holds their tokens at fixed canvas positions (in order, proportional to where they sat in the
    original) from the first step to the last; the rest of the slot re-forms around them.
    """

    start: int
    text: str


@dataclass(frozen=True)
class FreeText:
    """Text the model writes, under the rules that keep its block's shape.

    ``original`` is the text it replaces (its token count sets the length band); no token of it may contain a
    character of ``forbid_chars``; its first token may not begin a match of any of ``line_start_patterns``
    (regular expressions, as source strings); its length in tokens lies within ``band`` times the
    original's (``(1.0, 1.0)``: exactly the original's count, as a table cell between held ``|``).
    ``target_tokens``, when set, replaces the original's count as the band's centre: a drafted block has no
    original, only a length to aim at.
    """

    role: str
    original: str
    forbid_chars: frozenset[str] = frozenset()
    line_start_patterns: tuple[str, ...] = ()
    band: tuple[float, float] = (0.6, 1.5)
    target_tokens: int | None = None
    kept: tuple[KeptText, ...] = ()  # phrases held verbatim, in order

    @property
    def fixed_length(self) -> bool:
        return self.band == (1.0, 1.0)


TemplateSegment = HeldText | FreeText


@dataclass(frozen=True)
class BlockTemplate:
    """One block of a shape-true rewrite: its kind, its segments in order, and the document's text between
    the job's previous block and this one (held as well)."""

    kind: str
    segments: tuple[TemplateSegment, ...]
    gap_before: str = ""


@dataclass(frozen=True)
class RewriteJob:
    request: EditRequest
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    job_id: int = 0
    # Shape-true: one template per block of the target, in order; None: free form (the model may restructure).
    templates: tuple[BlockTemplate, ...] | None = None
    # Several blocks: denoise them as one batch, each block's canvas reading the document with the other
    # blocks as originally written (False: block after block, each reading the blocks rewritten before it).
    batch_blocks: bool = True

    # Polish: re-noise only the target's tokens whose probability (one read-only pass) is below this, and
    # re-fill them with every other token held; None: an ordinary rewrite.
    polish: float | None = None

    def __post_init__(self) -> None:
        if self.polish is not None and not 0.0 < self.polish < 1.0:
            raise SettingsError(f"polish must be a probability in (0, 1) (got {self.polish})")


def batches_blocks(job: RewriteJob) -> bool:
    """Whether the engine writes ``job``'s blocks as one batch: a shape-true job of two or more blocks in
    fast mode (reference mode keeps transformers' block-after-block conditioning, token for token)."""
    return (
        job.batch_blocks
        and job.templates is not None
        and len(job.templates) > 1
        and job.settings.sampling == "fast"
        and job.polish is None  # a polish reads and holds the blocks' own tokens, block after block
    )


@dataclass(frozen=True)
class SlotOutcome:
    """What the model wrote for one ``FreeText``, and the band it was held to (in tokens)."""

    text: str
    tokens: int
    original_tokens: int
    min_tokens: int
    max_tokens: int


@dataclass(frozen=True)
class Frame:
    """The canvas after one denoising step.

    ``text`` is the whole replacement as it stands: finished canvases plus this canvas' argmax,
    trimmed at the end token (in a shape-true job, then the original text not written yet: the held text
    after the last canvas and the blocks still to come). ``spans[i]`` is where token ``i`` of this canvas sits
    in ``text`` (an empty span for tokens after the end). ``accepted[i]`` says the sampler kept position i,
    ``changed[i]`` that its argmax differs from the previous frame's.
    """

    job_id: int
    canvas_index: int
    step: int
    total_steps: int
    token_ids: tuple[int, ...]
    pieces: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]
    accepted: tuple[bool, ...]
    changed: tuple[bool, ...]
    entropy: tuple[float, ...]
    text: str
    final: bool = False


@dataclass(frozen=True)
class RewriteResult:
    job_id: int
    text: str
    token_ids: tuple[int, ...]
    steps: int
    canvases: int
    tokens_per_forward: float
    encode_ms: float
    step_ms_median: float
    total_s: float
    seed: int
    model: str
    truncated_context: bool = False
    compiled: bool | None = None  # None: not asked for; else whether the compiled decoder step ran
    slots: tuple[SlotOutcome, ...] = ()  # a shape-true job's written texts, one per FreeText in order
    polished: int | None = None  # a polish job: how many tokens were re-noised and re-filled
    batched_rows: int = 1  # canvases denoised together per forward (a multi-block job's blocks: one each)

    def as_json(self, document: str) -> dict[str, object]:
        return {
            "text": document,
            "replacement": self.text,
            "steps": self.steps,
            "tokens_per_forward": round(self.tokens_per_forward, 3),
            "encode_ms": round(self.encode_ms, 2),
            "step_ms_median": round(self.step_ms_median, 2),
            "total_s": round(self.total_s, 4),
            "seed": self.seed,
            "model": self.model,
            "compiled": self.compiled,
        } | ({} if self.polished is None else {"polished_tokens": self.polished})


@dataclass(frozen=True)
class TokenReading:
    """One token of existing text as the model reads it (a read-only pass: the text as the canvas).

    ``start``/``end``: its characters in the text read (consecutive readings tile it exactly); ``p``: the
    softmax of the model's logits at this token's id; ``entropy``: of that distribution, in nats; ``top``: the
    likeliest tokens there, (text, probability), best first.
    """

    token_id: int
    start: int
    end: int
    p: float
    entropy: float
    top: tuple[tuple[str, float], ...]

    def as_json(self, text: str, offset: int = 0) -> dict[str, object]:
        return {
            "text": text[self.start : self.end],
            "start": self.start + offset,
            "end": self.end + offset,
            "p": round(self.p, 6),
            "entropy": round(self.entropy, 6),
            "top": [{"text": t, "p": round(q, 6)} for t, q in self.top],
        }


MAX_ALTERNATIVES = 8  # candidates of one batch, at most


@dataclass(frozen=True)
class AlternativesFrame:
    """Every candidate's latest frame (None: no step yet) after one batched step."""

    job_id: int
    frames: tuple[Frame | None, ...]
    final: bool = False


@dataclass(frozen=True)
class AlternativesResult:
    """Candidates for one job, denoised as one batch: ``seed`` (the run's) reproduces all of them; each
    candidate's result carries its own seed (see ``diffedit.engine.batch_jobs``)."""

    job_id: int
    seed: int
    candidates: tuple[RewriteResult, ...]
    forwards: int  # batched decoder forwards
    encodes: int  # context encodes (one: the candidates share it)
    total_s: float
