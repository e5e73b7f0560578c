"""Fixtures the training tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from diffedit.training.model_config import SHAPES
from tests.helpers.tiny_training import TINY


@pytest.fixture
def tiny_shape() -> Iterator[str]:
    """``"tiny"``, registered in ``SHAPES`` for the test."""
    SHAPES["tiny"] = TINY
    yield "tiny"
    del SHAPES["tiny"]
