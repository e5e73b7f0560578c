"""A drafted block as an engine job, and its result back as text (``rewrites.build_draft_job``)."""

from __future__ import annotations

from diffedit.document.drafts import DRAFT_GAP, place_block
from diffedit.engine.types import FreeText, GenerationSettings, RewriteResult, SlotOutcome
from diffedit.rewrites import DRAFT_LENGTHS, assemble_draft, build_draft_job

OUTLINE = "# Guide\n\n## Install\n\n- pip install guide\n\n## Usage\n"


def _result(text: str) -> RewriteResult:
    slot = SlotOutcome(text, 30, 0, 20, 60)
    return RewriteResult(0, text, (), 4, 1, 1.0, 1.0, 1.0, 0.1, 7, "m", slots=(slot,))


def test_a_draft_job_is_an_empty_target_between_the_document_so_far_and_the_rest() -> None:
    placement = place_block(OUTLINE, 2, "Install", 0, 1)
    job = build_draft_job(placement, GenerationSettings(seed=3), "long")
    assert job.request.target == ""
    assert job.request.prefix == "# Guide\n\n## Install\n\n- pip install guide" + DRAFT_GAP
    assert job.request.suffix == "\n\n## Usage\n"
    assert "Install" in job.request.instruction
    (template,) = job.templates or ()
    (slot,) = template.segments
    assert isinstance(slot, FreeText) and template.kind == "paragraph"
    assert slot.target_tokens == DRAFT_LENGTHS["long"] and slot.original == ""
    assert "\n" in slot.forbid_chars and any(p == "#" for p in slot.line_start_patterns)


def test_assembly_inserts_the_gap_and_one_paragraph_or_nothing() -> None:
    job = build_draft_job(place_block(OUTLINE, 3, "Usage", 0, 1), GenerationSettings(), "short")
    good = assemble_draft(job, _result(" Run it with one command.  "))
    assert good.text == DRAFT_GAP + "Run it with one command."
    assert good.blocks[0].same_shape and (good.blocks[0].min_tokens, good.blocks[0].max_tokens) == (20, 60)
    bad = assemble_draft(job, _result("- a list, not a paragraph"))
    assert bad.text == "" and bad.blocks[0].kept_original
