"""File > New from Template: every bundled outline parses as one and opens as a new untitled document."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from diffedit.document.drafts import default_sections, sections
from diffedit.resources import template_name, templates
from tests.ui.conftest import WindowFactory

EXPECTED = ["Blog Post", "Design Doc", "Meeting Notes", "README", "Release Notes"]


def test_each_template_is_an_outline_with_sections_to_draft() -> None:
    found = templates()
    assert sorted(name for name, _ in found) == EXPECTED
    for name, path in found:
        text = path.read_text(encoding="utf-8")
        outline = sections(text)
        assert outline and outline[0].level == 1, name
        assert len(default_sections(outline)) >= 3, name  # most of it is left to draft
        assert text.endswith("\n") and "\r" not in text


def test_template_names() -> None:
    assert template_name("readme") == "README" and template_name("meeting-notes") == "Meeting Notes"


def test_each_template_opens_as_a_new_untitled_document(make_window: WindowFactory, qtbot: QtBot) -> None:
    w = make_window()
    actions = w.template_menu.actions()
    assert [a.text() for a in actions] == EXPECTED
    for action, (_, path) in zip(actions, templates(), strict=True):
        action.trigger()
        assert w.editor.exact_text() == path.read_text(encoding="utf-8")
        assert w.documents.path is None and w.documents.display_name == "Untitled"
        assert not w.editor.document().isModified()


def test_the_package_data_carries_the_templates() -> None:
    import tomllib
    from pathlib import Path

    from diffedit.resources import resources_dir

    root = Path(__file__).resolve().parents[3]
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = data["tool"]["setuptools"]["package-data"]["diffedit.resources"]
    carried = {p for pattern in patterns for p in resources_dir().glob(pattern)}
    assert {path for _, path in templates()} <= carried  # tests/test_packaging.py opens the built wheel
