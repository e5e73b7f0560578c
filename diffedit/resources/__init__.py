"""The bundled resources, package data of ``diffedit.resources``: the welcome document, the demo model, the
application icon and the desktop entry. Found through ``importlib.resources``, so a source checkout, an
editable install and an installed wheel read them the same way.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

APP_ID = "io.github.diffedit.Diffedit"  # reverse-DNS id: desktop entry, AppStream, icon and Wayland app id


def resources_dir() -> Path:
    """The folder holding the resources (a real folder: transformers reads the demo model from disk)."""
    root = files(__name__)
    if not isinstance(root, Path):  # e.g. imported from a zip: the model could not be read from there
        raise RuntimeError(f"diffedit's resources are not on the file system ({root}); install the wheel")
    return root


def icon_path(size: int | None = None) -> Path:
    """The application icon: the scalable SVG, or the PNG rendered at ``size`` pixels."""
    icons = resources_dir() / "icons"
    if size is None:
        return icons / f"{APP_ID}.svg"
    return icons / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"


def templates() -> list[tuple[str, Path]]:
    """File > New from Template's outlines: ``(menu name, path)``, by name."""
    return [(template_name(p.stem), p) for p in sorted((resources_dir() / "templates").glob("*.md"))]


def template_name(stem: str) -> str:
    """``readme`` -> ``README``, ``meeting-notes`` -> ``Meeting Notes``."""
    return "README" if stem.lower() == "readme" else stem.replace("-", " ").title()
