"""One rewrite job for the editor and the CLI alike: the selection's blocks as engine templates, and the
engine's written slots assembled back into blocks of the same shape.

``build_job`` splits the span into blocks (``document.blocks``), takes each block's shape
(``document.shapes.shape_of``) and turns its held text and slots into the engine's torch-free templates,
choosing for each slot the characters and line starts the engine must forbid. ``assemble`` renders each
block from what the engine wrote (re-wrapping hard-wrapped paragraphs) and checks it with ``same_shape``; a
block that still fails the check (the constraints should make that impossible) is left as it was and
reported, so a broken block is never written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from diffedit.document.blocks import Block, parse_blocks
from diffedit.document.drafts import DRAFT_GAP, Placement
from diffedit.document.keeps import KeepProblem, landed, slot_offset
from diffedit.document.shapes import Held, Slot, render, same_shape, shape_of
from diffedit.engine.types import (
    BlockTemplate,
    EditRequest,
    FreeText,
    GenerationSettings,
    HeldText,
    KeepRefused,
    KeptText,
    RewriteJob,
    RewriteResult,
    TemplateSegment,
)

DEFAULT_BAND = (0.6, 1.5)
SHORTER_BAND = (0.3, 0.9)
LONGER_BAND = (1.1, 2.0)
# Tokens a drafted block aims at (within DEFAULT_BAND of it): "long" spans several canvases of most models.
DRAFT_LENGTHS = {"short": 48, "medium": 96, "long": 192}
# A cell may not hold a backslash (it would escape the '|' after it) or a backtick (a code span across cells).
CELL_CHARS = frozenset("\n|\\`")


def band_for(instruction: str) -> tuple[float, float]:
    """The length band, moved where the instruction asks for shorter or longer text."""
    words = instruction.lower()
    if "shorter" in words or "shorten" in words or "concise" in words:
        return SHORTER_BAND
    if "longer" in words or "expand" in words:
        return LONGER_BAND
    return DEFAULT_BAND


def _blocks_in(text: str, start: int, end: int) -> list[Block]:
    return [b for b in parse_blocks(text) if start <= b.start and b.end <= end]


def free_text(slot: Slot, band: tuple[float, float]) -> FreeText:
    """A document slot as the engine's ``FreeText``: what its tokens may not hold, where it may end."""
    starts = tuple(rule.pattern.pattern for rule in slot.line_start)
    if slot.role == "cell":
        return FreeText("cell", slot.original, slot.anywhere | CELL_CHARS, starts, (1.0, 1.0))
    if slot.role == "code":
        if starts:  # fenced: no token with the fence character, so no line can close the fence
            fence = next(c for c in "`~" if any(c in p for p in starts))
            return FreeText("code", slot.original, slot.anywhere | {fence}, (), band)
        edges = tuple(rule.pattern.pattern for rule in slot.edges[:1])  # indented: no blank first line
        return FreeText("code", slot.original, slot.anywhere, edges, band)
    # paragraph or heading text: one line, so its first position is its only line start
    return FreeText(slot.role, slot.original, slot.anywhere | {"\n"}, starts, band)


def template(
    block_text: str, gap_before: str, band: tuple[float, float], keeps: Sequence[tuple[int, int]] = ()
) -> BlockTemplate:
    """The block's template; ``keeps``: spans of ``block_text`` to keep verbatim (inside its slots)."""
    shape = shape_of(block_text)
    kept: dict[int, list[KeptText]] = {}
    for a, b in sorted(keeps):
        try:
            slot, offset = slot_offset(shape, block_text, a, b)
        except KeepProblem as exc:
            raise KeepRefused(str(exc)) from exc
        kept.setdefault(slot, []).append(KeptText(offset, block_text[a:b]))
    segments: list[TemplateSegment] = []
    for seg in shape.segments:
        if isinstance(seg, Held):
            segments.append(HeldText(seg.text))
            continue
        written = free_text(seg, band)
        phrases = kept.get(len([s for s in segments if isinstance(s, FreeText)]), [])
        segments.append(replace(written, kept=tuple(phrases)) if phrases else written)
    return BlockTemplate(shape.kind, tuple(segments), gap_before)


def build_job(
    text: str,
    start: int,
    end: int,
    settings: GenerationSettings,
    instruction: str = "",
    free_form: bool = False,
    job_id: int = 0,
    keeps: Sequence[tuple[int, int]] = (),
    polish: float | None = None,
) -> RewriteJob:
    """The job rewriting ``text[start:end]``: block by block, each keeping its shape, unless ``free_form``
    (or the span holds no whole block). ``keeps``: spans of ``text`` (inside the target's slots) the
    rewrite keeps verbatim; ``polish``: re-fill only the tokens less likely than this (see ``RewriteJob``).
    Raises ``KeepRefused`` for a kept span it cannot hold."""
    request = EditRequest.from_document(text, start, end, instruction)
    blocks = _blocks_in(text, start, end)
    if keeps and polish is not None:
        raise KeepRefused("Polish keeps every likely word already: mark no words to keep for it")
    for a, b in keeps:
        if not any(block.start <= a and b <= block.end for block in blocks):
            raise KeepRefused(f"“{text[a:b][:40]}” is not inside the blocks being rewritten")
    if keeps and free_form:
        raise KeepRefused("Kept words need a shape-true rewrite: turn off free form")
    if free_form or not blocks:
        return RewriteJob(request, settings, job_id, polish=polish)
    band = band_for(instruction)
    templates = []
    done = start
    for block in blocks:
        inside = [(a - block.start, b - block.start) for a, b in keeps if block.start <= a and b <= block.end]
        templates.append(template(block.text(text), text[done : block.start], band, inside))
        done = block.end
    return RewriteJob(request, settings, job_id, tuple(templates), polish=polish)


def kept_phrases(job: RewriteJob) -> list[str]:
    """The job's kept phrases in order."""
    return [
        k.text
        for t in job.templates or ()
        for seg in t.segments
        if isinstance(seg, FreeText)
        for k in seg.kept
    ]


def held_layout(job: RewriteJob) -> list[tuple[str, bool]] | None:
    """The job's target as (text, held) pieces: held text (markers, fences, gaps between blocks) and the
    free slots' original text, in order; None for a free-form job. The first canvas frame shows it."""
    if job.templates is None:
        return None
    pieces: list[tuple[str, bool]] = []
    for block in job.templates:
        if block.gap_before:
            pieces.append((block.gap_before, True))
        for seg in block.segments:
            pieces.append((seg.text, True) if isinstance(seg, HeldText) else (seg.original, False))
    written = sum(len(t) for t, _ in pieces)
    if job.request.target[written:]:
        pieces.append((job.request.target[written:], True))
    return pieces


@dataclass(frozen=True)
class BlockReport:
    """One block of an assembled rewrite, for reports: its band and ratio are in tokens over its slots."""

    kind: str
    tokens: int  # written
    original_tokens: int
    min_tokens: int
    max_tokens: int
    same_shape: bool
    kept_original: bool = False  # the rewrite failed the shape check, so the original block stayed
    reason: str = ""

    @property
    def ratio(self) -> float:
        return self.tokens / self.original_tokens if self.original_tokens else 1.0

    def as_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "band": [self.min_tokens, self.max_tokens],
            "ratio": round(self.ratio, 3),
            "same_shape": self.same_shape,
            "kept_original": self.kept_original,
        }


@dataclass(frozen=True)
class Assembly:
    text: str  # the replacement of the job's span
    blocks: tuple[BlockReport, ...]


def assemble_blocks(job: RewriteJob, result: RewriteResult) -> Assembly:
    """The replacement of the span, block by block (see the module's docstring)."""
    if job.templates is None:
        return Assembly(result.text, ())
    request = job.request
    document = request.prefix + request.target + request.suffix
    start, end = len(request.prefix), len(request.prefix) + len(request.target)
    blocks = _blocks_in(document, start, end)
    if len(blocks) != len(job.templates):
        raise ValueError(f"the job has {len(job.templates)} block templates, its span {len(blocks)} blocks")
    written = iter(result.slots)
    out: list[str] = []
    reports: list[BlockReport] = []
    done = start
    for block in blocks:
        original = block.text(document)
        shape = shape_of(original)
        slots = [next(written) for _ in shape.slots]
        texts = [
            s.text if seg.role == "cell" else s.text.rstrip()
            for s, seg in zip(slots, shape.slots, strict=True)
        ]
        new = render(shape, texts, wrap=job.polish is None)  # a polish moves no line break
        verdict = same_shape(original, new)
        out.append(document[done : block.start] + (new if verdict else original))
        done = block.end
        reports.append(
            BlockReport(
                shape.kind,
                sum(s.tokens for s in slots),
                sum(s.original_tokens for s in slots),
                sum(s.min_tokens for s in slots),
                sum(s.max_tokens for s in slots),
                bool(verdict),
                kept_original=not verdict,
                reason=verdict.reason,
            )
        )
    out.append(document[done:end])
    return Assembly("".join(out), tuple(reports))


def assemble(job: RewriteJob, result: RewriteResult) -> str:
    """The text that replaces the job's span."""
    return assemble_blocks(job, result).text


def report_json(job: RewriteJob, assembly: Assembly) -> dict[str, object]:
    """What ``--json`` adds to (or, for the replacement, corrects in) the engine's report."""
    phrases = kept_phrases(job)
    kept = [
        {"phrase": phrase, "start": at[0] if at else None, "end": at[1] if at else None}
        for phrase, at in zip(phrases, landed(assembly.text, phrases), strict=True)
    ]
    return {
        "replacement": assembly.text,
        "original": job.request.target,
        "free_form": job.templates is None,
        "blocks": [b.as_json() for b in assembly.blocks],
    } | ({"kept": kept} if phrases else {})


def build_draft_job(placement: Placement, settings: GenerationSettings, length: str = "medium") -> RewriteJob:
    """The job writing one drafted paragraph at ``placement``: an empty target between the document so far
    and the rest of the outline, one paragraph slot aiming at ``DRAFT_LENGTHS[length]`` tokens (a longer
    one is written canvas after canvas, each appended to the context once)."""
    request = EditRequest(placement.prefix, "", placement.suffix, placement.instruction)
    slot = replace(
        free_text(shape_of("draft").slots[0], DEFAULT_BAND), original="", target_tokens=DRAFT_LENGTHS[length]
    )
    return RewriteJob(request, settings, 0, (BlockTemplate("paragraph", (slot,)),))


def assemble_draft(job: RewriteJob, result: RewriteResult) -> Assembly:
    """What a drafted block inserts: the gap and the paragraph, or nothing if it is not one paragraph."""
    written = result.slots[0] if result.slots else None
    paragraph = (written.text if written is not None else result.text).strip()
    blocks = parse_blocks(paragraph)
    ok = len(blocks) == 1 and blocks[0].kind == "paragraph" and blocks[0].text(paragraph) == paragraph
    report = BlockReport(
        "paragraph",
        written.tokens if written is not None else len(result.token_ids),
        0,
        written.min_tokens if written is not None else 0,
        written.max_tokens if written is not None else 0,
        ok,
        kept_original=not ok,
        reason="" if ok else "the draft is not one paragraph",
    )
    return Assembly(DRAFT_GAP + paragraph if ok else "", (report,))
