"""Block templates compiled into canvas constraints: held positions, forbidden tokens, where the end may fall.

A job's templates are read as one stream of held text and free slots. The stream is cut into *runs*: a run
is laid out over consecutive canvases and ends with its one variable-length slot (or with the stream).
In a run, held text is tokenized in place (held positions), a fixed-length slot (a table cell: exactly its
original's token count) sits at fixed positions, and the variable slot's end token may fall only inside its
band: forbidden before ``min_tokens``, held at ``max_tokens`` (with padding held after it). Held text after
the job's last slot is never generated: it is appended after the canvases (:attr:`JobPlan.trailing`).

Simplifications that keep the guarantee (``diffedit.rewrites`` sets the characters):

- a paragraph, heading, list-item or quote slot forbids newline tokens: its only line start is its first
  position, which forbids every token that could begin a forbidden line start (a partial regex match);
  a hard-wrapped original is re-wrapped on the document side afterwards;
- a code body forbids the fence character, so no line of it can close the fence;
- a token whose text is empty (a special token other than the end, or control characters only) is
  forbidden in every slot, so the first visible character really is at the first position.
- a token that is only part of a character (a byte of a multi-byte UTF-8 sequence: alone it decodes to
  U+FFFD) is forbidden in a slot whose original needs none: a weak model strings such bytes into invalid
  sequences, which would put a replacement character into English prose. A slot whose original is spelt
  with them (rare characters split into bytes) keeps them.

Kept words (:class:`KeptText`) are held tokens inside a slot: placed in order at positions proportional to
where they sat in the original (:func:`place_kept`), and the slot's end may not fall before the last of them,
so they appear verbatim, in order, whatever length the model gives the rest. A polish (:func:`polish_run`)
holds a run's original layout everywhere but at its weak positions.

Token texts are decoded once per tokenizer (:class:`TokenClasses`, kept by the engine) and every class of
tokens is a cached boolean mask over the vocabulary, so compiling a job costs a few tensor operations, not a
pass over 262,144 strings per slot.
"""

from __future__ import annotations

import math
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import regex
import torch

from diffedit.engine.sampling import CanvasConstraints
from diffedit.engine.types import BlockTemplate, FreeText, HeldText, KeepRefused, KeptText, TemplateSegment


def printable(text: str) -> str:
    """``text`` without control characters but newline and tab (a weak model can emit them, and they would
    make the saved file look binary)."""
    return "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc")


class TokenClasses:
    """Every token's text, decoded once, and boolean masks (over the vocabulary) of classes of tokens."""

    def __init__(self, tokenizer: Any, vocab_size: int, end_ids: Iterable[int]) -> None:
        known = min(vocab_size, len(tokenizer))
        decoded = tokenizer.batch_decode([[i] for i in range(known)], skip_special_tokens=True)
        self.texts: list[str] = [printable(str(t)) for t in decoded] + [""] * (vocab_size - known)
        self.vocab_size = vocab_size
        self.end_ids = frozenset(int(e) for e in end_ids)
        empty = torch.tensor([not t for t in self.texts], dtype=torch.bool)
        empty[sorted(self.end_ids)] = False
        self.empty = empty  # shows nothing: no slot may hold one (the end ids are placed by the band)
        # part of a character: alone it decodes to U+FFFD (see the module's docstring)
        self.partial = torch.tensor(["\ufffd" in t for t in self.texts], dtype=torch.bool)
        self.ends = torch.zeros(vocab_size, dtype=torch.bool)
        self.ends[sorted(self.end_ids)] = True
        # Masks by rule, the least recently used dropped past MASK_CACHE_SIZE: diffedit's templates use a
        # handful, and a server must not let its clients grow this without bound.
        self._containing: OrderedDict[frozenset[str], torch.Tensor] = OrderedDict()
        self._starting: OrderedDict[tuple[str, ...], torch.Tensor] = OrderedDict()

    def containing(self, chars: frozenset[str]) -> torch.Tensor:
        """Tokens whose text holds any of ``chars``."""
        mask = _recall(self._containing, chars)
        if mask is None:
            mask = torch.tensor([not chars.isdisjoint(t) for t in self.texts], dtype=torch.bool)
            _remember(self._containing, chars, mask)
        return mask

    def starting(self, patterns: tuple[str, ...]) -> torch.Tensor:
        """Tokens whose text, at a line start, matches one of ``patterns`` or could begin a match (a partial
        match: the tokens after it might complete it)."""
        mask = _recall(self._starting, patterns)
        if mask is None:
            either = regex.compile("|".join(f"(?:{p})" for p in patterns))
            mask = torch.tensor(
                [either.match(t, partial=True) is not None for t in self.texts], dtype=torch.bool
            )
            _remember(self._starting, patterns, mask)
        return mask


MASK_CACHE_SIZE = 64


def _recall(cache: OrderedDict[Any, torch.Tensor], key: Any) -> torch.Tensor | None:
    mask = cache.get(key)
    if mask is not None:
        cache.move_to_end(key)
    return mask


def _remember(cache: OrderedDict[Any, torch.Tensor], key: Any, mask: torch.Tensor) -> None:
    cache[key] = mask
    while len(cache) > MASK_CACHE_SIZE:
        cache.popitem(last=False)


def place_kept(
    offsets: Sequence[int], lengths: Sequence[int], original: int, low: int, high: int
) -> list[int]:
    """Where kept phrases go in a slot (token positions from the slot's start).

    ``offsets``: where each sat in the original (tokens before it), in order; ``lengths``: their token
    counts; ``original``: the original's token count; the slot may write ``low``..``high`` tokens. Each goes
    at its offset scaled to the length the band expects (the original's, brought inside the band), then is
    pushed after the one before it and pulled back so every one ends by ``high``. Raises ``KeepRefused`` when
    they cannot all fit.
    """
    if sum(lengths) > high:
        raise KeepRefused(
            f"the kept words take {sum(lengths)} tokens, more than the {high} this block may hold: "
            "keep fewer or shorter phrases"
        )
    expected = min(high, max(low, original))
    pos = [round(k * expected / original) if original else 0 for k in offsets]
    for i in range(1, len(pos)):
        pos[i] = max(pos[i], pos[i - 1] + lengths[i - 1])
    limit = high
    for i in reversed(range(len(pos))):
        pos[i] = min(pos[i], limit - lengths[i])
        limit = pos[i]
    return pos


def kept_ids(
    tokenizer: Any, original: str, kept: Sequence[KeptText]
) -> tuple[list[int], list[list[int]], list[bool]]:
    """Each kept phrase's offset in tokens (the original's tokens before it), its tokens, and whether a word
    ended with it; a space before it in the original is held with it (tokenizers write the space into the
    word's token)."""
    offsets: list[int] = []
    ids: list[list[int]] = []
    word_ends: list[bool] = []
    for k in kept:
        if original[k.start : k.start + len(k.text)] != k.text:
            raise KeepRefused(f"“{k.text}” is not where the job says it is in the original")
        start = k.start - 1 if k.start > 0 and original[k.start - 1] == " " else k.start
        offsets.append(len(_encode(tokenizer, original[:start])))
        ids.append(_encode(tokenizer, original[start : k.start + len(k.text)]))
        after = original[k.start + len(k.text) : k.start + len(k.text) + 1]
        word_ends.append(not (after.isalnum() or after == "_"))
    return offsets, ids, word_ends


@dataclass(frozen=True)
class SlotPlan:
    """Where a slot lies in its run (token positions) and its band."""

    start: int
    min_tokens: int
    max_tokens: int
    original_tokens: int
    fixed: bool


@dataclass
class RunPlan:
    """Consecutive canvases that write one stretch of the templates; the last slot's end closes the run."""

    canvas_length: int
    canvases: int
    held: dict[int, int]  # position -> token
    forbidden: list[tuple[int, int, torch.Tensor]]  # (first, stop, token-class mask) over positions
    original: list[int]  # the run as the original text lays it out: the warm start of a refine
    slots: list[SlotPlan]
    tail: str  # the original text after this run, shown after its canvases in frames
    _cache: dict[int, CanvasConstraints] = field(default_factory=dict)

    def constraints(self, canvas: int, device: torch.device) -> CanvasConstraints:
        """Canvas ``canvas`` of the run's constraints, on ``device`` (positions counted from its start)."""
        got = self._cache.get(canvas)
        if got is None:
            lo, hi = canvas * self.canvas_length, (canvas + 1) * self.canvas_length
            positions, tokens = [], []
            for first, stop, mask in self.forbidden:
                a, b = max(first, lo), min(stop, hi)
                if a < b:
                    ids = mask.nonzero().squeeze(1)
                    positions.append(torch.arange(a - lo, b - lo).repeat_interleave(ids.numel()))
                    tokens.append(ids.repeat(b - a))
            held = sorted((p - lo, t) for p, t in self.held.items() if lo <= p < hi)
            got = CanvasConstraints(
                (torch.cat(positions), torch.cat(tokens)) if positions else None,
                (torch.tensor([p for p, _ in held]), torch.tensor([t for _, t in held])) if held else None,
            )
            self._cache[canvas] = got
        return CanvasConstraints(
            *(None if pair is None else (pair[0].to(device), pair[1].to(device)) for pair in got)
        )

    def warm_start(self, canvas: int) -> list[int]:
        return self.original[canvas * self.canvas_length : (canvas + 1) * self.canvas_length]

    def slot_ids(self, kept: list[int]) -> list[list[int]]:
        """Each slot's tokens in ``kept`` (the run's tokens before its end)."""
        return [kept[s.start : s.start + s.max_tokens] if s.fixed else kept[s.start :] for s in self.slots]


@dataclass
class JobPlan:
    runs: list[RunPlan]
    trailing: str  # held text after the last slot: appended after the canvases, never generated


def band(n: int, slot: FreeText) -> tuple[int, int]:
    """The (min, max) token counts a slot whose original has ``n`` tokens may take."""
    if slot.fixed_length:
        return n, n
    low = max(1, math.floor(n * slot.band[0]))
    return low, max(low, math.ceil(n * slot.band[1]))


def flatten(templates: Sequence[BlockTemplate]) -> list[TemplateSegment]:
    out: list[TemplateSegment] = []
    for template in templates:
        if template.gap_before:
            out.append(HeldText(template.gap_before))
        out += template.segments
    return out


def compile_templates(
    templates: Sequence[BlockTemplate],
    tokenizer: Any,
    classes: TokenClasses,
    canvas_length: int,
    eos_id: int,
    pad_id: int,
) -> JobPlan:
    """The job's runs (see the module's docstring)."""
    stream = flatten(templates)
    last_slot = max((i for i, s in enumerate(stream) if isinstance(s, FreeText)), default=-1)
    trailing = "".join(s.text if isinstance(s, HeldText) else s.original for s in stream[last_slot + 1 :])
    runs: list[RunPlan] = []
    builder = _RunBuilder(canvas_length)
    for i, seg in enumerate(stream[: last_slot + 1]):
        if isinstance(seg, HeldText):
            builder.hold(_encode(tokenizer, seg.text))
            continue
        ids = _encode(tokenizer, seg.original)
        low, high = band(len(ids) if seg.target_tokens is None else seg.target_tokens, seg)
        mask = classes.containing(seg.forbid_chars) | classes.empty if seg.forbid_chars else classes.empty
        if not classes.partial[ids].any():
            mask = mask | classes.partial
        offsets, kept, word_ends = kept_ids(tokenizer, seg.original, seg.kept)
        at = place_kept(offsets, [len(k) for k in kept], len(ids), low, high)
        placed = list(zip(at, kept, word_ends, strict=True))
        builder.slot(ids, low, high, seg.fixed_length, mask, classes, seg.line_start_patterns, placed)
        if not seg.fixed_length or i == last_slot:
            tail = "".join(s.text if isinstance(s, HeldText) else s.original for s in stream[i + 1 :])
            runs.append(builder.close(eos_id, pad_id, tail))
            builder = _RunBuilder(canvas_length)
    return JobPlan(runs, trailing)


def _encode(tokenizer: Any, text: str) -> list[int]:
    return [int(i) for i in tokenizer.encode(text, add_special_tokens=False)] if text else []


class _RunBuilder:
    def __init__(self, canvas_length: int) -> None:
        self.canvas_length = canvas_length
        self.held: dict[int, int] = {}
        self.forbidden: list[tuple[int, int, torch.Tensor]] = []
        self.original: list[int] = []
        self.slots: list[SlotPlan] = []
        self.pos = 0

    def hold(self, ids: list[int]) -> None:
        for i, t in enumerate(ids):
            self.held[self.pos + i] = t
        self.original += ids
        self.pos += len(ids)

    def slot(
        self,
        ids: list[int],
        low: int,
        high: int,
        fixed: bool,
        mask: torch.Tensor,
        classes: TokenClasses,
        line_start: tuple[str, ...],
        kept: Sequence[tuple[int, list[int], bool]] = (),
    ) -> None:
        start = self.pos
        self.slots.append(SlotPlan(start, low, high, len(ids), fixed))
        for at, phrase, word_end in kept:  # held where placed; the end may not fall before the last of them
            for i, t in enumerate(phrase):
                self.held[start + at + i] = t
            low = max(low, at + len(phrase))
            after = start + at + len(phrase)
            if word_end and after < start + high:  # a kept word is not run into the next ("river" + "lic")
                self.forbidden.append((after, after + 1, classes.starting((r"\w",))))
        if high:
            self.forbidden.append((start, start + high, mask))
            if line_start:
                self.forbidden.append((start, start + 1, classes.starting(line_start)))
        if low:
            self.forbidden.append((start, start + low, classes.ends))  # the end may not fall before the band
        self.original += ids
        if fixed:
            self.pos += len(ids)
        else:
            self.original += [-1] * (high - len(ids))  # padding of the original's layout, set on close
            self.pos += high

    def close(self, eos_id: int, pad_id: int, tail: str) -> RunPlan:
        end = self.pos
        canvases = max(1, math.ceil((end + 1) / self.canvas_length))
        total = canvases * self.canvas_length
        self.held[end] = eos_id  # the end at the latest where the band allows it
        for p in range(end + 1, total):
            self.held[p] = pad_id
        # the original's layout: its tokens, its end, then padding (the warm start of a refine)
        original = [t for t in self.original if t != -1]
        length_before_pad = len(original)
        layout = original + [eos_id] + [pad_id] * (total - length_before_pad - 1)
        for p, t in self.held.items():
            layout[p] = t
        return RunPlan(
            self.canvas_length, canvases, self.held, self.forbidden, layout[:total], self.slots, tail
        )


def slot_positions(run: RunPlan) -> list[int]:
    """The positions of a run's layout that hold its slots' original tokens (what a polish may re-fill)."""
    return [p for s in run.slots for p in range(s.start, s.start + s.original_tokens)]


def polish_run(run: RunPlan, weak: Iterable[int], classes: TokenClasses) -> RunPlan:
    """``run`` with its original layout held everywhere but at ``weak`` positions, which the model re-fills
    under their slots' rules (and may not end at: the length stays the original's)."""
    weak = set(weak)
    held = {p: t for p, t in enumerate(run.original) if p not in weak}
    forbidden = run.forbidden + [(p, p + 1, classes.ends) for p in sorted(weak)]
    return RunPlan(run.canvas_length, run.canvases, held, forbidden, run.original, run.slots, run.tail)


def run_canvases(run: RunPlan) -> tuple[list[list[int]], list[list[int]]]:
    """A run's original layout as canvases, and what the encoder appends after each when the run is read as
    written: a whole canvas, or the last one's tokens before its end."""
    n = run.canvas_length
    canvases = [run.original[i * n : (i + 1) * n] for i in range(run.canvases)]
    end = max((s.start + s.original_tokens for s in run.slots), default=0)  # the layout's end token
    carry = [list(c) for c in canvases]
    last = end // n
    carry[last] = canvases[last][: end - last * n]
    return canvases, carry
