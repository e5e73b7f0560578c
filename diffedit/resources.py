"""Where the bundled resources live: ``resources/`` of a checkout, or the copy a wheel installs."""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    """``resources/`` beside the package in a source checkout or editable install, else ``share/diffedit``."""
    here = Path(__file__).resolve().parents[1] / "resources"
    if here.is_dir():
        return here
    return Path(sys.prefix) / "share" / "diffedit" / "resources"


def templates() -> list[tuple[str, Path]]:
    """File > New from Template's outlines: ``(menu name, path)``, by name; none if the folder is missing."""
    folder = resources_dir() / "templates"
    found = sorted(folder.glob("*.md")) if folder.is_dir() else []
    return [(template_name(p.stem), p) for p in found]


def template_name(stem: str) -> str:
    """``readme`` -> ``README``, ``meeting-notes`` -> ``Meeting Notes``."""
    return "README" if stem.lower() == "readme" else stem.replace("-", " ").title()
