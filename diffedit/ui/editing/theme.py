"""Light and dark themes: one palette for the widgets, one set of colours for Markdown and the canvas."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication


@dataclass(frozen=True)
class Theme:
    name: str
    window: str
    base: str
    text: str
    muted: str
    highlight: str
    heading: str
    emphasis: str
    code_fg: str
    code_bg: str
    link: str
    marker: str
    quote: str
    target_bg: str  # the snapped selection that Ctrl+R will rewrite
    running_bg: str  # the target while it is being rewritten
    noise_fg: str  # canvas positions not yet accepted
    fresh_bg: str  # tokens changed in this step
    committed_bg: str  # the replacement just after commit
    border: str = "#a0a0a0"  # frames of buttons and fields where the style's own are too faint

    def color(self, name: str) -> QColor:
        return QColor(getattr(self, name))


LIGHT = Theme(
    name="light",
    window="#efefef",
    base="#ffffff",
    text="#1e1e1e",
    muted="#8a8a8a",
    highlight="#3875d7",
    heading="#1f4e99",
    emphasis="#5a2d82",
    code_fg="#a3361c",
    code_bg="#f3f1ec",
    link="#0b6bcb",
    marker="#b06000",
    quote="#5f6f5f",
    target_bg="#e4ecfb",
    running_bg="#f5f0ff",
    noise_fg="#a8a8b3",
    fresh_bg="#ffe98a",
    committed_bg="#e3f6e3",
)
DARK = Theme(
    name="dark",
    window="#2b2b2b",
    base="#1e1f22",
    text="#d7d7d7",
    muted="#8b8b8b",
    highlight="#2f65ca",
    heading="#7fb4ff",
    emphasis="#d3a6ff",
    code_fg="#e7a07a",
    code_bg="#2a2a2e",
    link="#6fb3ff",
    marker="#e0a050",
    quote="#9fb09f",
    target_bg="#24324a",
    running_bg="#2c2640",
    noise_fg="#6a6a78",
    fresh_bg="#6b5a10",
    committed_bg="#1f3a25",
    border="#7a7d85",
)
THEMES = {"light": LIGHT, "dark": DARK}


def resolve_theme(name: str) -> Theme:
    """``light``, ``dark``, or ``system``: the desktop's colour scheme (light where it says nothing)."""
    if name == "system":
        dark = QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark
        return DARK if dark else LIGHT
    return THEMES.get(name, LIGHT)


def apply_theme(app: QApplication, theme: Theme) -> None:
    app.setStyle("Fusion")
    p = QPalette()
    p.setColor(QPalette.ColorRole.Window, theme.color("window"))
    p.setColor(QPalette.ColorRole.WindowText, theme.color("text"))
    p.setColor(QPalette.ColorRole.Base, theme.color("base"))
    p.setColor(QPalette.ColorRole.AlternateBase, theme.color("window"))
    p.setColor(QPalette.ColorRole.Text, theme.color("text"))
    p.setColor(QPalette.ColorRole.Button, theme.color("window"))
    p.setColor(QPalette.ColorRole.ButtonText, theme.color("text"))
    p.setColor(QPalette.ColorRole.ToolTipBase, theme.color("base"))
    p.setColor(QPalette.ColorRole.ToolTipText, theme.color("text"))
    p.setColor(QPalette.ColorRole.PlaceholderText, theme.color("muted"))
    p.setColor(QPalette.ColorRole.Highlight, theme.color("highlight"))
    p.setColor(QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
    p.setColor(QPalette.ColorRole.Link, theme.color("link"))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, theme.color("muted"))
    app.setPalette(p)
    # Fusion derives its frames from the window colour: on a dark window they all but vanish.
    app.setStyleSheet(_DARK_FRAMES.format(t=theme, **_arrow_images(theme)) if theme.name == "dark" else "")


def _arrow_images(theme: Theme) -> dict[str, str]:
    """Spin-box arrows in the theme's text colour: a styled spin box no longer draws its own."""
    import qtawesome

    folder = Path(tempfile.gettempdir()) / f"diffedit-arrows-{theme.name}"
    folder.mkdir(exist_ok=True)
    paths = {}
    for key, name in (("up", "mdi6.menu-up"), ("down", "mdi6.menu-down")):
        path = folder / f"{key}.png"
        if not path.is_file():
            qtawesome.icon(name, color=QColor(theme.text)).pixmap(24, 24).save(str(path))
        paths[key] = path.as_posix()
    return paths


_DARK_FRAMES = """
QPushButton {{ border: 1px solid {t.border}; border-radius: 3px; padding: 3px 10px;
    background: #383a3f; color: {t.text}; }}
QPushButton:hover {{ background: #44474d; }}
QPushButton:pressed {{ background: #2f3135; }}
QPushButton:disabled {{ color: {t.muted}; border-color: #55575c; }}
QSpinBox, QLineEdit {{ border: 1px solid {t.border}; border-radius: 3px; padding: 1px 3px;
    background: {t.base}; color: {t.text}; }}
QSpinBox:focus, QLineEdit:focus {{ border-color: {t.highlight}; }}
QSpinBox {{ padding-right: 16px; }}
QSpinBox::up-button, QSpinBox::down-button {{ subcontrol-origin: border; width: 16px;
    background: #383a3f; border-left: 1px solid {t.border}; }}
QSpinBox::up-button {{ subcontrol-position: top right; }}
QSpinBox::down-button {{ subcontrol-position: bottom right; }}
QSpinBox::up-arrow {{ image: url({up}); width: 12px; height: 12px; }}
QSpinBox::down-arrow {{ image: url({down}); width: 12px; height: 12px; }}
"""
