"""Shared fixtures: a tiny random DiffusionGemma checkpoint on disk, config and state in temp folders."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# CI replays a fixed set of examples (`HYPOTHESIS_PROFILE=ci` in .ci/run) so a landing never fails on a new
# random draw; a developer's run explores fresh examples each time.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# torch.compile's cache: one temporary folder for the session, never the user's (warm across the suite).
_COMPILE_CACHE = None
if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
    _COMPILE_CACHE = tempfile.mkdtemp(prefix="diffedit-tests-compile-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = _COMPILE_CACHE


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.checkpoints import build_checkpoint

    return build_checkpoint(tmp_path_factory.mktemp("tiny-dg") / "tiny-dg")


@pytest.fixture(autouse=True, scope="session")
def _remove_the_compile_cache() -> Iterator[None]:
    yield
    if _COMPILE_CACHE is not None:
        shutil.rmtree(_COMPILE_CACHE, ignore_errors=True)


@pytest.fixture(autouse=True, scope="module")
def _fresh_compiler_state() -> Iterator[None]:
    """Each test module starts with torch.compile's caches empty: the compiled step compiles once per model
    shape and dtype, and the whole suite's many small models would otherwise share one process's allowance."""
    yield
    if "torch._dynamo" in sys.modules:
        import torch._dynamo

        torch._dynamo.reset()


@pytest.fixture(autouse=True)
def _torch_threads_restored() -> Iterator[None]:
    """A test that calls code setting torch's thread count (the training commands' ``--threads``) leaves the
    count as it found it: the tests after it, and a server process they compare with bit for bit, run with
    torch's default, where a different count can round a near-tie the other way."""
    import torch

    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings, recovery files and caches of the app under test never touch the real user folders."""
    base = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("DIFFEDIT_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("DIFFEDIT_STATE_DIR", str(base / "state"))
