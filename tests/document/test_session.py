"""The pure document layer: target tracking, history bounds, snapping, outline, positions."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from diffedit.document.blocks import parse_blocks
from diffedit.document.history import MAX_ENTRIES_WITH_FRAMES, FrameRecorder, History, HistoryEntry
from diffedit.document.outline import outline, word_count
from diffedit.document.session import (
    EditEffect,
    RewriteSession,
    SpanConflict,
    TrackedSpan,
    normalize_replacement,
)
from diffedit.document.targets import WHOLE_DOCUMENT_LIMIT, blocks_near, snap_target
from diffedit.document.textpos import from_utf16, to_utf16, utf16_len


class Doc:
    """A string document with the same change reports as QTextDocument.contentsChange."""

    def __init__(self, text: str) -> None:
        self.text = text

    def edit(self, pos: int, removed: int, insert: str) -> tuple[int, int, int]:
        self.text = self.text[:pos] + insert + self.text[pos + removed :]
        return pos, removed, len(insert)

    def read(self, a: int, b: int) -> str:
        return self.text[a:b]


DOC = "Intro line.\n\nTarget paragraph here.\n\nOutro line.\n"
T0 = DOC.index("Target")
T1 = T0 + len("Target paragraph here.")


def session(doc: Doc) -> RewriteSession:
    return RewriteSession(1, T0, T1, doc.read(T0, T1), doc.read)


def test_edit_before_target_moves_it() -> None:
    doc = Doc(DOC)
    s = session(doc)
    assert s.apply_change(*doc.edit(0, 0, "More ")) is EditEffect.BEFORE
    assert doc.read(s.start, s.end) == "Target paragraph here."
    assert s.apply_change(*doc.edit(0, 5, "")) is EditEffect.BEFORE
    assert (s.start, s.end) == (T0, T1)


def test_edit_after_target_leaves_it() -> None:
    doc = Doc(DOC)
    s = session(doc)
    assert s.apply_change(*doc.edit(T1 + 2, 0, "x")) is EditEffect.AFTER
    assert s.apply_change(*doc.edit(T1 + 1, 0, "y")) is EditEffect.AFTER
    assert s.intact() and (s.start, s.end) == (T0, T1)


def test_edits_inside_or_at_the_edges_touch_the_target() -> None:
    for pos, removed, text in [
        (T0 + 3, 0, "x"),
        (T0, 0, "x"),
        (T1, 0, "x"),
        (T0 - 1, 1, ""),
        (T1, 1, ""),
        (0, len(DOC), ""),
    ]:
        doc = Doc(DOC)
        s = session(doc)
        assert s.apply_change(*doc.edit(pos, removed, text)) is EditEffect.INSIDE, (pos, removed, text)


def test_same_length_report_with_unchanged_text_is_formatting() -> None:
    doc = Doc(DOC)
    s = session(doc)
    assert s.apply_change(T0, 5, 5) is EditEffect.FORMAT_ONLY
    assert s.apply_change(*doc.edit(T0, 1, "X")) is EditEffect.INSIDE


def test_commit_refuses_a_changed_target() -> None:
    doc = Doc(DOC)
    s = session(doc)
    assert s.commit_span() == (T0, T1)
    doc.edit(T0, 1, "X")
    try:
        s.commit_span()
    except SpanConflict:
        pass
    else:
        raise AssertionError("commit over edited text")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 5), st.text("ab\n", max_size=4)), max_size=12))
def test_target_follows_any_edit_outside_it(edits: list[tuple[int, int, str]]) -> None:
    doc = Doc(DOC)
    s = session(doc)
    for pos, removed, text in edits:
        pos = min(pos, len(doc.text))
        removed = min(removed, len(doc.text) - pos)
        if pos <= s.end and pos + removed >= s.start:
            continue  # an edit touching the target ends the run: covered above
        s.apply_change(*doc.edit(pos, removed, text))
        assert doc.read(s.start, s.end) == "Target paragraph here."


def test_frame_recorder_is_bounded_and_keeps_the_last() -> None:
    rec: FrameRecorder[str] = FrameRecorder(limit=10)
    for i in range(500):
        rec.add(str(i))
    rec.add("end", final=True)
    assert len(rec.frames) <= 10
    assert rec.frames[0] == "0" and rec.frames[-1] == "end"


def test_history_drops_old_frames() -> None:
    h: History[str] = History()
    for i in range(MAX_ENTRIES_WITH_FRAMES + 5):
        h.add(
            HistoryEntry(
                datetime.now(),
                "1",
                "",
                4,
                1.0,
                0.1,
                "m",
                i,
                "a",
                "b",
                TrackedSpan(0, 1),
                ["frame"],
            )
        )
    assert not h[0].frames and h[len(h) - 1].frames
    assert "blocks 1" in h[0].label()


def test_tracked_span_follows_and_clamps() -> None:
    s = TrackedSpan(10, 20)
    s.apply_change(0, 0, 5)
    assert (s.start, s.end) == (15, 25)
    s.apply_change(30, 2, 0)
    assert (s.start, s.end) == (15, 25)
    s.apply_change(20, 10, 0)  # cuts the tail
    assert (s.start, s.end) == (15, 20)
    s.apply_change(0, 100, 3)  # swallows it
    assert s.start <= s.end


def test_snap_target_whole_blocks() -> None:
    text = "# H\n\nOne two three.\nsecond line.\n\n- item a\n- item b\n"
    a = text.index("two")
    assert snap_target(text, a, a + 3) == (text.index("One"), text.index("line.") + 5)
    b = text.index("item b")
    assert snap_target(text, a, b + 2) == (text.index("One"), len(text) - 1)
    assert snap_target("", 0, 0) is None


def test_windowed_blocks_match_a_whole_parse_in_a_large_document() -> None:
    unit = "## Part\n\nSome words here.\n\n```\ncode\n\nmore code\n```\n\n- a\n- b\n\n    indented\n\n"
    text = unit * (WHOLE_DOCUMENT_LIMIT // len(unit) + 50)
    whole = parse_blocks(text)
    for probe in (len(text) // 2, len(text) // 3 + 7, len(text) - 20):
        near = blocks_near(text, probe, probe)
        spans = {(b.start, b.end, b.kind) for b in whole}
        assert near and all((b.start, b.end, b.kind) in spans for b in near)
        assert snap_target(text, probe, probe) in {(b.start, b.end) for b in whole} | {None}


def test_outline_skips_code_and_reads_setext() -> None:
    text = "# One\n\n```\n# not a heading\n```\n\nTwo\n===\n\n### Three ###\n"
    assert [(h.level, h.title) for h in outline(text)] == [(1, "One"), (1, "Two"), (3, "Three")]
    assert word_count("a b  c\nd") == 4


def test_utf16_positions_round_trip() -> None:
    text = "a😀b\n😀😀c"
    for i in range(len(text) + 1):
        assert from_utf16(text, to_utf16(text, i)) == i
    assert utf16_len(text) == len(text) + 3
    assert to_utf16("plain", 3) == 3


def test_normalize_replacement() -> None:
    assert normalize_replacement("a\r\nb\rc\u2029d\x00") == "a\nb\nc\nd"


def test_an_unclosed_code_fence_in_a_replacement_is_closed() -> None:
    from diffedit.document.blocks import parse_blocks
    from diffedit.document.session import close_open_fence, normalize_replacement

    assert close_open_fence("Intro\n```python\nx = 1") == "Intro\n```python\nx = 1\n```"
    assert close_open_fence("~~~~\ncode") == "~~~~\ncode\n~~~~"
    assert close_open_fence("```\nclosed\n```") == "```\nclosed\n```"
    assert close_open_fence("plain `code` and ``more``") == "plain `code` and ``more``"
    assert close_open_fence("    ```\nindented code, not a fence") == "    ```\nindented code, not a fence"
    # the document after the replacement keeps its own blocks
    doc = "Before.\n\n" + normalize_replacement("New text\n```\nx") + "\n\nAfter stays a paragraph."
    assert parse_blocks(doc)[-1].kind == "paragraph"
