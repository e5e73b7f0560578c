"""Kept words on the canvas: where they are placed, when they are refused, how a slot holds them."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from diffedit.engine.constraints import (
    TokenClasses,
    compile_templates,
    place_kept,
    polish_run,
    slot_positions,
)
from diffedit.engine.types import BlockTemplate, FreeText, HeldText, KeepRefused, KeptText


def test_placement_is_proportional_when_the_band_expects_the_originals_length() -> None:
    assert place_kept([0, 10, 30], [2, 2, 2], original=40, low=24, high=60) == [0, 10, 30]


def test_placement_scales_to_the_band_and_keeps_order_and_room() -> None:
    # a "shorter" band: 40 tokens are expected to become 36 at most
    assert place_kept([0, 20, 38], [2, 2, 2], original=40, low=12, high=36) == [0, 18, 34]
    # two phrases that would overlap are pushed apart, in order
    assert place_kept([5, 6], [4, 4], original=20, low=12, high=30) == [5, 9]
    # the last is pulled back so it ends by the band's top, and those before it make room
    assert place_kept([8, 9], [3, 3], original=10, low=6, high=10) == [4, 7]


def test_kept_words_longer_than_the_block_may_hold_are_refused() -> None:
    with pytest.raises(KeepRefused, match="more than the 6"):
        place_kept([0, 3], [4, 3], original=10, low=3, high=6)


class _Tok:
    """Characters as tokens (id = code point), enough for the compiler."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [ord(c) for c in text]

    def batch_decode(self, ids: list[list[int]], skip_special_tokens: bool = True) -> list[str]:
        return [chr(i[0]) if i[0] >= 32 else "" for i in ids]

    def __len__(self) -> int:
        return 128


EOS, PAD = 1, 2


def _plan(kept: tuple[KeptText, ...], original: str = "the quick brown fox jumps", band=(0.6, 1.5)) -> Any:
    tok = _Tok()
    classes = TokenClasses(tok, 128, {EOS, PAD})
    slot = FreeText("paragraph", original, frozenset("\n"), (), band, kept=kept)
    template = BlockTemplate("heading", (HeldText("# "), slot))
    return compile_templates((template,), tok, classes, 64, EOS, PAD), classes


def test_a_slot_holds_its_kept_words_and_may_not_end_before_them() -> None:
    plan, classes = _plan((KeptText(10, "brown"), KeptText(20, "jumps")))
    (run,) = plan.runs
    start = 2  # after the held "# "
    text = "".join(chr(run.held[p]) for p in range(start + 9, start + 15))
    assert text == " brown"  # the space before it is held with it, at its original place
    assert "".join(chr(run.held[p]) for p in range(start + 19, start + 25)) == " jumps"
    ends_forbidden = {p for a, b, mask in run.forbidden if bool(mask[EOS]) for p in range(a, b)}
    assert set(range(start, start + 25)) <= ends_forbidden  # no end before the last kept word
    # the position after a kept word may not start a word ("brown" + "ish")
    after = start + 15
    assert any(
        a <= after < b and bool(mask[ord("i")]) and not bool(mask[ord(" ")]) for a, b, mask in run.forbidden
    )
    c = run.constraints(0, torch.device("cpu"))
    assert c.held is not None and (start + 10) in c.held[0].tolist()
    del classes


def test_a_kept_phrase_not_where_the_job_says_is_refused() -> None:
    with pytest.raises(KeepRefused):
        _plan((KeptText(3, "brown"),))


def test_polish_holds_everything_but_the_weak_slot_positions() -> None:
    plan, classes = _plan(())
    (run,) = plan.runs
    weak = slot_positions(run)[3:5]
    polished = polish_run(run, weak, classes)
    assert set(range(len(run.original))) - set(polished.held) == set(weak)
    assert all(polished.held[p] == run.original[p] for p in polished.held)
    assert any(
        a == weak[0] and bool(mask[EOS]) for a, _, mask in polished.forbidden
    )  # no end where re-filled
