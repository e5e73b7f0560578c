"""Painting a frame: the engine's Frame becomes styled runs the in-place canvas draws (pure, no widgets)."""

from __future__ import annotations

from diffedit.engine.types import Frame
from diffedit.ui.rewrite.canvas_renderer import CanvasPaint, PaintKind, display_text, paint_frame


def frame(
    text_pieces: list[str], accepted: list[bool], changed: list[bool], final: bool = False, head: str = ""
) -> Frame:
    spans, pos = [], len(head)
    for p in text_pieces:
        spans.append((pos, pos + len(p)))
        pos += len(p)
    n = len(text_pieces)
    return Frame(
        1,
        0,
        2,
        8,
        tuple(range(n)),
        tuple(text_pieces),
        tuple(spans),
        tuple(accepted),
        tuple(changed),
        (0.0,) * n,
        head + "".join(text_pieces),
        final,
    )


def test_paint_marks_noise_fresh_and_text() -> None:
    p = paint_frame(
        frame(["ab", "cd", "ef", ""], [True, False, True, False], [False, True, True, True], head="HEAD ")
    )
    assert p.text == "HEAD abcdef"
    assert p.runs == ((0, 7, PaintKind.TEXT), (7, 9, PaintKind.NOISE), (9, 11, PaintKind.FRESH))
    final = paint_frame(frame(["ab", "cd"], [False, False], [True, True], final=True))
    assert final.runs == ((0, 4, PaintKind.TEXT),) and final.final


def test_a_plain_paint_is_one_text_run() -> None:
    assert CanvasPaint.plain("abc").runs == ((0, 3, PaintKind.TEXT),) and CanvasPaint.plain("").runs == ()


def test_display_keeps_offsets_and_shows_noise_newlines_as_marks() -> None:
    paint = CanvasPaint("ab\ncd\n", ((0, 3, PaintKind.TEXT), (3, 6, PaintKind.NOISE)))
    shown = display_text(paint)
    assert len(shown) == len(paint.text)
    assert shown == "ab\u2028cd\u21b5"
