"""Canvas constraints: templates compiled for a tokenizer, and the sampler keeping them at every step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from diffedit.engine.constraints import MASK_CACHE_SIZE, TokenClasses, compile_templates
from diffedit.engine.denoise import DenoiseOptions, StepView, denoise
from diffedit.engine.loader import load_model
from diffedit.engine.sampling import (
    CanvasConstraints,
    SamplerConfig,
    draw_fast,
    draw_reference,
    next_canvas,
    read_step,
    uniform_canvas,
)
from diffedit.engine.types import BlockTemplate, FreeText, HeldText
from tests.checkpoints import build_tokenizer
from tests.engine.test_sampling import CHI2_CRIT_DF5, _chi_square

EOS, PAD = 1, 0
PARAGRAPH_STARTS = (r"#", r"[ \t]", r"\d{1,9}[.)](?:[ \t]|\n|\Z)", r"[-+*](?:[ \t]|\n|\Z)")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return build_tokenizer(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def classes(tokenizer: Any) -> TokenClasses:
    return TokenClasses(tokenizer, len(tokenizer), {EOS, PAD})


def _ids_where(classes: TokenClasses, test: Any) -> set[int]:
    return {i for i, t in enumerate(classes.texts) if test(t)}


def test_token_classes_are_the_tokens_whose_text_has_the_property(classes: TokenClasses) -> None:
    newline = classes.containing(frozenset("\n"))
    assert set(newline.nonzero().squeeze(1).tolist()) == _ids_where(classes, lambda t: "\n" in t)
    assert newline.any()
    starts = classes.starting(PARAGRAPH_STARTS)
    forbidden = {classes.texts[i] for i in starts.nonzero().squeeze(1).tolist()}
    assert {"#", "1", "-"} <= forbidden  # "1" may become "1. " with the next token: a partial match
    allowed = {classes.texts[i] for i in (~starts).nonzero().squeeze(1).tolist()}
    assert {"T", "a"} <= allowed
    assert not any(t[:1] in " \t#" for t in allowed)
    assert not classes.empty[EOS] and not classes.empty[PAD]  # the end is placed by the band, not forbidden


def _paragraph_job(tokenizer: Any, classes: TokenClasses, canvas_length: int, original: str) -> Any:
    template = BlockTemplate(
        "list item",
        (
            HeldText("- "),
            FreeText("paragraph", original, frozenset("\n"), PARAGRAPH_STARTS),
        ),
    )
    return compile_templates([template], tokenizer, classes, canvas_length, EOS, PAD)


def test_a_template_compiles_to_held_positions_a_band_and_forbidden_classes(
    tokenizer: Any, classes: TokenClasses
) -> None:
    original = "The editor rewrites a paragraph by diffusion. Select some text, press Ctrl+R and watch it."
    n = len(tokenizer.encode(original, add_special_tokens=False))
    plan = _paragraph_job(tokenizer, classes, 16, original)
    (run,) = plan.runs
    held_ids = tokenizer.encode("- ", add_special_tokens=False)
    slot = run.slots[0]
    assert (slot.start, slot.original_tokens) == (len(held_ids), n)
    assert (slot.min_tokens, slot.max_tokens) == (int(n * 0.6), -(-n * 3 // 2))
    end = slot.start + slot.max_tokens
    assert run.canvases == -(-(end + 1) // 16)  # a slot longer than a canvas spans as many as it needs
    assert [run.held[p] for p in range(len(held_ids))] == held_ids
    assert run.held[end] == EOS and all(run.held[p] == PAD for p in range(end + 1, 16 * run.canvases))
    # Per canvas: the forbidden pairs, shifted to the canvas's own positions.
    pairs: set[tuple[int, int]] = set()
    for k in range(run.canvases):
        c = run.constraints(k, torch.device("cpu"))
        assert c.forbidden is not None  # a middle canvas holds nothing: its positions are all the slot's
        pairs |= {(16 * k + p, t) for p, t in zip(*(x.tolist() for x in c.forbidden), strict=True)}
    newline = _ids_where(classes, lambda t: "\n" in t)
    for p in range(slot.start, end):
        assert {(p, t) for t in newline} <= pairs
        assert ((p, EOS) in pairs) == (p < slot.start + slot.min_tokens)
    hash_ids = _ids_where(classes, lambda t: t.startswith("#"))
    assert {(slot.start, t) for t in hash_ids} <= pairs  # the slot's first position: its only line start
    assert not {(slot.start + 1, t) for t in hash_ids} & pairs


def test_fixed_slots_sit_between_held_text_and_the_stream_ends_with_held_text(
    tokenizer: Any, classes: TokenClasses
) -> None:
    cell = FreeText("cell", " alpha ", frozenset("\n|"), (), (1.0, 1.0))
    row = BlockTemplate("table", (HeldText("|"), cell, HeldText("|"), cell, HeldText("|\n")))
    plan = compile_templates([row], tokenizer, classes, 16, EOS, PAD)
    (run,) = plan.runs
    n = len(tokenizer.encode(" alpha ", add_special_tokens=False))
    first, second = run.slots
    assert first.fixed and (first.min_tokens, first.max_tokens) == (n, n)
    assert second.start == first.start + n + len(tokenizer.encode("|", add_special_tokens=False))
    assert plan.trailing == "|\n"  # after the last slot: appended, never generated
    assert run.held[second.start + n] == EOS


# ---------------------------------------------------------------- the sampler keeps them


def test_held_positions_never_change_and_forbidden_tokens_are_never_drawn() -> None:
    g = torch.Generator().manual_seed(0)
    length, vocab = 24, 40
    held = (torch.tensor([0, 1, 7, 23]), torch.tensor([5, 6, 7, 1]))
    forbidden = (torch.arange(2, 7).repeat_interleave(10), torch.arange(10).repeat(5))  # tokens 0-9 at 2..6
    constraints = CanvasConstraints(forbidden, held)
    cfg = SamplerConfig(10, 0.5, 0.4, 0.8, 1, 0.005)
    canvas = uniform_canvas((1, length), vocab, g, torch.device("cpu"))
    for remaining in range(10, 0, -1):
        logits = torch.randn(1, length, vocab, generator=g) * 3
        logits[0, 7, 7] = -50.0  # a held token the model finds unlikely is still held
        for reference in (False, True):
            scored, accepted = read_step(
                logits.clone(), cfg, torch.tensor(remaining, dtype=torch.int32), constraints, reference
            )
            drawn = (draw_reference if reference else draw_fast)(scored, accepted, g)
            fresh = uniform_canvas((1, length), vocab, g, torch.device("cpu"))
            canvas = next_canvas(accepted, drawn, fresh, constraints)
            assert torch.equal(canvas[0, held[0]], held[1])
            assert torch.equal(scored.argmax[0, held[0]], held[1]) and bool(accepted[0, held[0]].all())
            assert not bool((scored.argmax[0, 2:7] < 10).any())
            kept = drawn[0, 2:7][accepted[0, 2:7]]
            assert not bool((kept < 10).any())


@pytest.mark.parametrize("mode", ["fast", "reference"])
def test_free_positions_of_a_constrained_canvas_draw_the_unconstrained_distribution(mode: str) -> None:
    logits_row = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, 0.3])
    draws = 48_000
    logits = logits_row.expand(1, draws, 6).contiguous()
    positions = torch.arange(draws)
    held_pos = positions[positions % 4 == 0]
    banned_pos = positions[positions % 4 == 1]
    free = positions % 4 >= 2
    constraints = CanvasConstraints(
        (banned_pos, torch.zeros_like(banned_pos)), (held_pos, torch.full_like(held_pos, 3))
    )
    cfg = SamplerConfig(4, 1e9, 1.0, 1.0, 1, 0.005)  # temperature 1, every position accepted
    remaining = torch.tensor(4, dtype=torch.int32)
    scored, accepted = read_step(logits, cfg, remaining, constraints, mode == "reference")
    assert bool(accepted.all())
    g = torch.Generator().manual_seed(17)
    drawn = (draw_reference if mode == "reference" else draw_fast)(scored, accepted, g)[0]
    counts = torch.bincount(drawn[free], minlength=6).float()
    assert _chi_square(counts, torch.softmax(logits_row, -1)) < CHI2_CRIT_DF5
    # the position forbidding token 0 draws the others in their proportions; held positions their token
    banned = torch.bincount(drawn[banned_pos], minlength=6).float()
    assert banned[0] == 0
    assert _chi_square(banned[1:], torch.softmax(logits_row[1:], -1)) < CHI2_CRIT_DF5 - 1.5
    assert bool((drawn[held_pos] == 3).all())


# ---------------------------------------------------------------- the loop


def test_the_loop_keeps_held_tokens_in_every_frame_and_ends_inside_the_band(tiny_checkpoint: Path) -> None:
    loaded = load_model(tiny_checkpoint, device="cpu")
    tok = loaded.tokenizer
    classes = TokenClasses(tok, int(loaded.model.config.text_config.vocab_size), {EOS, PAD})
    original = "Paragraphs are separated by blank lines. Words, numbers and punctuation."
    plan = _paragraph_job(tok, classes, int(loaded.model.config.canvas_length), original)
    (run,) = plan.runs
    cfg = SamplerConfig(8, 0.1, 0.4, 0.8, 1, 0.005)
    for seed in range(3):
        views: list[StepView] = []
        options = DenoiseOptions(cfg, frozenset({EOS}), PAD, runs=(run,))
        out = denoise(loaded.model, [2, 4, 5, 6], options, torch.Generator().manual_seed(seed), views.append)
        assert out.canvases <= run.canvases
        for v in views:
            base = v.canvas_index * run.canvas_length
            for p, t in run.held.items():
                if base <= p < base + run.canvas_length:
                    assert int(v.argmax[p - base]) == t and bool(v.accepted[p - base])
        slot = run.slots[0]
        (kept,) = out.runs_kept
        written = len(kept) - slot.start
        assert slot.min_tokens <= written <= slot.max_tokens
        assert not any("\n" in classes.texts[t] for t in kept[slot.start :])
        assert not classes.starting(PARAGRAPH_STARTS)[kept[slot.start]]


def test_a_slot_without_an_original_takes_its_band_from_target_tokens(
    tokenizer: Any, classes: TokenClasses
) -> None:
    """A drafted block has no original: its band is around the length it aims at, over several canvases."""
    slot = FreeText("paragraph", "", frozenset("\n"), PARAGRAPH_STARTS, target_tokens=40)
    plan = compile_templates([BlockTemplate("paragraph", (slot,))], tokenizer, classes, 16, EOS, PAD)
    (run,) = plan.runs
    (planned,) = run.slots
    assert (planned.start, planned.original_tokens) == (0, 0)
    assert (planned.min_tokens, planned.max_tokens) == (24, 60)
    assert run.canvases == 4 and run.held[60] == EOS  # 61 positions: canvas after canvas


def test_the_rule_masks_are_remembered_but_never_more_than_a_bounded_number(classes: TokenClasses) -> None:
    """A server compiles the rules its clients send: each distinct set costs a vocabulary-sized mask, so
    the cache keeps the most recently used MASK_CACHE_SIZE and answers the same either way."""
    first = classes.containing(frozenset("\n"))
    for i in range(3 * MASK_CACHE_SIZE):
        classes.containing(frozenset({chr(0x4E00 + i)}))
        classes.starting((f"x{i}",))
    assert len(classes._containing) == MASK_CACHE_SIZE and len(classes._starting) == MASK_CACHE_SIZE
    again = classes.containing(frozenset("\n"))  # dropped long ago: made again, the same mask
    assert torch.equal(first, again)
    kept = classes.containing(frozenset({chr(0x4E00 + 3 * MASK_CACHE_SIZE - 1)}))
    assert kept is classes._containing[frozenset({chr(0x4E00 + 3 * MASK_CACHE_SIZE - 1)})]


def test_lone_bytes_of_characters_are_forbidden_unless_the_original_is_spelt_with_them(
    tokenizer: Any, classes: TokenClasses
) -> None:
    partial = set(classes.partial.nonzero().squeeze(1).tolist())
    assert partial == _ids_where(classes, lambda t: "\ufffd" in t) and len(partial) > 64  # byte-level BPE

    def forbidden_at_start(original: str) -> set[int]:
        (run,) = _paragraph_job(tokenizer, classes, 64, original).runs
        c = run.constraints(0, torch.device("cpu"))
        assert c.forbidden is not None
        start = run.slots[0].start
        return {t for p, t in zip(*(x.tolist() for x in c.forbidden), strict=True) if p == start}

    assert partial <= forbidden_at_start("Plain English words only.")
    spelt = "Named after 景太郎."
    assert set(tokenizer.encode(spelt, add_special_tokens=False)) & partial  # this tokenizer splits them
    assert not partial & forbidden_at_start(spelt)
