"""Shared fixtures: a tiny random DiffusionGemma checkpoint on disk, config and state in temp folders."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# torch.compile's cache: one temporary folder for the session, never the user's (warm across the suite).
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="diffedit-tests-compile-"))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.checkpoints import build_checkpoint

    return build_checkpoint(tmp_path_factory.mktemp("tiny-dg") / "tiny-dg")


@pytest.fixture(autouse=True, scope="module")
def _fresh_compiler_state() -> Iterator[None]:
    """Each test module starts with torch.compile's caches empty: the compiled step compiles once per model
    shape and dtype, and the whole suite's many small models would otherwise share one process's allowance."""
    yield
    if "torch._dynamo" in sys.modules:
        import torch._dynamo

        torch._dynamo.reset()


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings, recovery files and caches of the app under test never touch the real user folders."""
    base = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("DIFFEDIT_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("DIFFEDIT_STATE_DIR", str(base / "state"))
