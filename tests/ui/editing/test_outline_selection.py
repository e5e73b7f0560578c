"""The outline drops the selection of a heading that is gone (issue 18)."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from tests.ui.conftest import WindowFactory


def test_outline_drops_a_stale_selection(make_window: WindowFactory, qtbot: QtBot) -> None:
    w = make_window(text="# One\n\ntext\n\n# Two\n\nmore\n\n# Three\n")
    w.outline_dock.show()
    w.summary.refresh_now()
    tree = w.outline_dock.tree
    assert tree.topLevelItemCount() == 3
    tree.setCurrentItem(tree.topLevelItem(1))
    assert [i.text(0) for i in tree.selectedItems()] == ["Two"]
    text = w.editor.toPlainText()
    c = w.editor.textCursor()
    c.setPosition(text.index("# Two"))
    c.setPosition(text.index("# Three"), c.MoveMode.KeepAnchor)
    c.removeSelectedText()
    w.summary.refresh_now()
    assert [tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())] == ["One", "Three"]
    assert tree.selectedItems() == [] and tree.currentItem() is None
