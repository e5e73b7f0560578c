"""Pulling a checkpoint through huggingface_hub, against a hub stand-in on 127.0.0.1 (never the internet)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
from safetensors.torch import save_file

from diffedit.engine.catalog import find_checkpoints, machine_memory
from diffedit.engine.download import DownloadError, pull_model
from diffedit.engine.engine import Engine
from diffedit.engine.types import Cancelled, CancelToken
from tests.engine.fake_hub import FakeHub, FakeRepo, serve, sha256

REPO = "acme/tiny-dg"
WANTED = {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"}
NEVER = ("pytorch_model.bin", "modeling_evil.py", "original/consolidated.safetensors")


@pytest.fixture
def online(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary HF_HOME and huggingface_hub allowed online (the suite runs with HF_HUB_OFFLINE=1)."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    return tmp_path / "hf" / "hub"


@pytest.fixture
def hub(tiny_checkpoint: Path, online: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    repo = FakeRepo.from_folder(tiny_checkpoint)
    repo.files.update({name: b"not for diffedit" for name in NEVER})
    with serve(FakeHub({REPO: repo})) as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        yield fake


def blob_files(cache: Path) -> set[str]:
    return {p.name for p in cache.glob("models--*/blobs/*")}


def test_pull_fetches_what_a_checkpoint_needs_and_it_loads(hub: FakeHub, online: Path) -> None:
    seen: list[tuple[int, int, float]] = []
    folder = pull_model(REPO, progress=lambda done, total, rate: seen.append((done, total, rate)))
    repo = hub.repos[REPO]
    assert folder == online / "models--acme--tiny-dg" / "snapshots" / repo.commit
    assert (online / "models--acme--tiny-dg" / "refs" / "main").read_text() == repo.commit
    names = {p.name for p in folder.iterdir()}
    assert names >= WANTED
    assert not names & {"pytorch_model.bin", "modeling_evil.py", "original"}
    assert not any(path.endswith(NEVER) for _, path, _ in hub.requests)
    for name in names:
        assert sha256((folder / name).read_bytes()) == sha256(repo.files[name])
    fetched = sum(len(repo.files[n]) for n in names)
    assert seen[-1][0] == seen[-1][1] == fetched  # progress ends at the bytes actually fetched
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)
    assert all(rate >= 0 for _, _, rate in seen)
    assert Engine.load(folder).name == repo.commit  # loads through diffedit's loader
    listed = [e for e in find_checkpoints(machine=machine_memory(probe_gpu=False)) if e.name == REPO]
    assert len(listed) == 1 and listed[0].usable and listed[0].path == folder and listed[0].parameters > 0


def test_a_second_pull_fetches_nothing(hub: FakeHub) -> None:
    first = pull_model(REPO)
    gets = sum(1 for method, path, _ in hub.requests if method == "GET" and "/resolve/" in path)
    seen: list[int] = []
    assert pull_model(REPO, progress=lambda d, t, r: seen.append(t)) == first
    assert sum(1 for method, path, _ in hub.requests if method == "GET" and "/resolve/" in path) == gets
    assert not seen  # nothing to fetch, so no progress


def test_a_failed_pull_keeps_finished_files_and_the_next_one_completes(hub: FakeHub, online: Path) -> None:
    hub.fail["model.safetensors"] = 500
    with pytest.raises(DownloadError, match=r"HTTP 500 .*run the pull again"):
        pull_model(REPO)
    kept = blob_files(online)
    assert kept and not list(online.glob("models--*/blobs/*.incomplete"))
    del hub.fail["model.safetensors"]
    requests_before = len(hub.requests)
    folder = pull_model(REPO)
    again = [
        path for method, path, _ in hub.requests[requests_before:] if method == "GET" and "/resolve/" in path
    ]
    assert all(path.endswith("/model.safetensors") for path in again)  # only what was missing
    data = hub.repos[REPO].files["model.safetensors"]
    assert sha256((folder / "model.safetensors").read_bytes()) == sha256(data)


@pytest.fixture
def big_hub(online: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """A repo with one 32 MB weight file: several of huggingface_hub's 10 MB reads."""
    save_file({"w": torch.arange(8 * 1024 * 1024, dtype=torch.float32)}, str(tmp_path / "w.safetensors"))
    files = {
        "config.json": b'{"model_type": "diffusion_gemma"}',
        "model.safetensors": (tmp_path / "w.safetensors").read_bytes(),
    }
    with serve(FakeHub({"acme/big": FakeRepo(files)})) as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        yield fake


def test_a_dropped_connection_resumes_with_a_range_request(big_hub: FakeHub) -> None:
    """huggingface_hub keeps what it has written (whole 10 MB reads) and asks for the rest with a Range."""
    data = big_hub.repos["acme/big"].files["model.safetensors"]
    chunk = huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE
    big_hub.drop_once["model.safetensors"] = 2 * chunk + 12345
    folder = pull_model("acme/big")
    assert big_hub.gets("model.safetensors") == ["", f"bytes={2 * chunk}-"]  # not the whole file again
    assert sha256((folder / "model.safetensors").read_bytes()) == sha256(data)


def test_cancel_from_the_progress_callback_stops_the_transfer(big_hub: FakeHub, online: Path) -> None:
    size = len(big_hub.repos["acme/big"].files["model.safetensors"])
    cancel = CancelToken()
    calls: list[int] = []

    def progress(done: int, total: int, rate: float) -> None:
        calls.append(done)
        if done >= 10 * 1024 * 1024:
            cancel.cancel()

    with pytest.raises(Cancelled):
        pull_model("acme/big", progress=progress, cancel=cancel)
    assert calls[-1] < size  # no progress reported after the cancel
    assert big_hub.sent["model.safetensors"] < size  # the server never got to send the whole file
    assert not list(online.glob("models--acme--big/snapshots/*/model.safetensors"))
    assert not list(online.glob("models--acme--big/blobs/*.incomplete"))
    folder = pull_model("acme/big")  # the next pull completes
    assert sha256((folder / "model.safetensors").read_bytes()) == sha256(
        big_hub.repos["acme/big"].files["model.safetensors"]
    )


def test_a_gated_repo_says_how_to_log_in(
    tiny_checkpoint: Path, online: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve(FakeHub({"acme/gated": FakeRepo.from_folder(tiny_checkpoint, gated=True)})) as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        with pytest.raises(DownloadError, match=r"acme/gated is gated: .*`hf auth login` or set HF_TOKEN"):
            pull_model("acme/gated")
        assert not [p for m, p, _ in fake.requests if m == "GET" and "/resolve/" in p]
    assert not blob_files(online)


def test_unknown_repo_and_revision_are_named(hub: FakeHub) -> None:
    with pytest.raises(DownloadError, match=r"acme/missing was not found on http://127\.0\.0\.1"):
        pull_model("acme/missing")
    with pytest.raises(DownloadError, match=r"acme/tiny-dg has no revision 'v9'"):
        pull_model(REPO, revision="v9")
    with pytest.raises(DownloadError, match=r"'not a repo!' is not a model id"):
        pull_model("not a repo!")


def test_a_repo_without_safetensors_is_refused_before_any_file_is_fetched(
    online: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {"config.json": b'{"model_type": "diffusion_gemma"}', "pytorch_model.bin": b"pickle"}
    with serve(FakeHub({"acme/pickle": FakeRepo(files)})) as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        with pytest.raises(DownloadError, match=r"no safetensors weights \(only pickle files"):
            pull_model("acme/pickle")
        assert not [p for m, p, _ in fake.requests if "/resolve/" in p]


def test_offline_mode_fetches_nothing_and_says_so(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError, match=r"HF_HUB_OFFLINE is set, so acme/tiny-dg cannot be downloaded"):
        pull_model(REPO)
    assert hub.requests == []


def test_offline_mode_returns_a_complete_cached_snapshot(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = pull_model(REPO)
    count = len(hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert pull_model(REPO) == folder
    assert len(hub.requests) == count


def test_an_unreachable_hub_is_named(online: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on once it is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(DownloadError, match=rf"cannot reach http://127\.0\.0\.1:{port} .*check the"):
        pull_model(REPO)
