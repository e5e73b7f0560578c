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
