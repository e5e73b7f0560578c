"""The engine's message types: importable without torch, and settings that check their values once."""

from __future__ import annotations

import subprocess
import sys

import pytest

from diffedit.engine.types import EngineError, GenerationSettings


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"strength": 0.0}, r"strength must be in \(0, 1\] \(got 0.0\)"),
        ({"strength": 1.5}, r"strength must be in \(0, 1\] \(got 1.5\)"),
        ({"strength": float("nan")}, r"strength must be in \(0, 1\] \(got nan\)"),
        ({"steps": 0}, r"steps must be at least 1 \(got 0\)"),
        ({"sampling": "exact"}, r"sampling must be 'fast' or 'reference' \(got 'exact'\)"),
        ({"max_new_tokens": 0}, r"max_new_tokens must be at least 1 \(got 0\)"),
        ({"context_tokens": 0}, r"context_tokens must be at least 1 \(got 0\)"),
        ({"entropy_bound": -0.1}, r"entropy_bound must be at least 0 \(got -0.1\)"),
        ({"t_min": 0.0}, r"t_min must be above 0 \(got 0.0\)"),
        ({"t_max": -1.0}, r"t_max must be above 0 \(got -1.0\)"),
    ],
)
def test_bad_settings_are_refused_where_they_are_built(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        GenerationSettings(**settings)  # type: ignore[arg-type]
    assert isinstance(caught.value, EngineError)  # callers that show engine errors show this one too


def test_settings_at_the_edges_of_their_ranges_are_accepted() -> None:
    GenerationSettings(strength=1.0, steps=1, max_new_tokens=1, context_tokens=1, entropy_bound=0.0)
    GenerationSettings(strength=1e-3, sampling="reference", t_min=1e-3, t_max=10.0)


def test_the_message_types_import_without_torch() -> None:
    code = "import sys, diffedit.engine.types; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
