"""Finding checkpoints: a fake Hugging Face cache in a temp dir, user folders, the demo, memory estimates."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from diffedit.engine.catalog import (
    INT4_BYTES_PER_PARAM,
    INT8_BYTES_PER_PARAM,
    MachineMemory,
    WeightStats,
    describe_checkpoint,
    estimate_loads,
    find_checkpoints,
    hf_cache_dir,
    is_demo_model,
    is_quantisable,
    resolve_model,
    weight_stats,
)
from diffedit.engine.loader import default_model_path
from diffedit.engine.types import ModelLoadError

COMMIT = "a" * 40
NO_GPU = MachineMemory(ram_total=16 * 10**9, ram_available=8 * 10**9)
TENSORS = {
    "model.embed_tokens.weight": torch.zeros(10, 4, dtype=torch.bfloat16),  # 40, not quantisable
    "model.layers.0.mlp.experts.gate_up_proj": torch.zeros(2, 8, 4, dtype=torch.bfloat16),  # 64
    "model.layers.0.self_attn.q_proj.weight": torch.zeros(4, 4, dtype=torch.bfloat16),  # 16
    "model.layers.0.input_layernorm.weight": torch.zeros(4, dtype=torch.float32),  # 4, not quantisable
}


def write_snapshot(cache: Path, repo: str, files: dict[str, bytes | dict[str, torch.Tensor]]) -> Path:
    """One repo in the hub cache layout: blobs named by content hash, snapshot symlinks, refs/main."""
    root = cache / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / COMMIT
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(COMMIT)
    for name, content in files.items():
        if isinstance(content, dict):
            save_file(content, str(root / "tmp"))
            content = (root / "tmp").read_bytes()
            (root / "tmp").unlink()
        blob = root / "blobs" / hashlib.sha256(content).hexdigest()
        blob.write_bytes(content)
        os.symlink(os.path.relpath(blob, snapshot), snapshot / name)
    return snapshot


def dg_files(**extra: bytes | dict[str, torch.Tensor]) -> dict[str, bytes | dict[str, torch.Tensor]]:
    return {
        "config.json": json.dumps({"model_type": "diffusion_gemma", "canvas_length": 16}).encode(),
        "tokenizer.json": json.dumps({"model": {"type": "BPE"}, "added_tokens": []}).encode(),
        "model.safetensors": TENSORS,
        **extra,
    }


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("DIFFEDIT_MODELS_DIR", str(tmp_path / "old-downloads"))
    return tmp_path / "hf" / "hub"


def test_the_cache_location_follows_hf_home_and_hf_hub_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    assert hf_cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    assert hf_cache_dir() == tmp_path / "elsewhere"


def test_a_cached_diffusion_gemma_is_listed_with_its_numbers(cache: Path) -> None:
    snapshot = write_snapshot(cache, "acme/dg", dg_files())
    entries = find_checkpoints(machine=NO_GPU)
    (dg,) = [e for e in entries if e.name == "acme/dg"]
    assert dg.usable and dg.source == "hf-cache" and dg.family == "diffusion_gemma" and not dg.demo
    assert dg.path == snapshot
    assert dg.parameters == 40 + 64 + 16 + 4
    assert dg.dtype == "bf16+f32"  # by bytes: 240 of bf16, 16 of f32
    assert dg.size_bytes == sum(p.stat().st_size for p in snapshot.iterdir())
    assert [ld.mode for ld in dg.loads] == ["bf16", "int8", "int4", "offloaded"]


def test_other_families_and_pickle_only_repos_are_unusable_with_the_reason(cache: Path) -> None:
    write_snapshot(
        cache, "acme/llama", {"config.json": b'{"model_type": "llama"}', "model.safetensors": TENSORS}
    )
    pickled = {k: v for k, v in dg_files().items() if k != "model.safetensors"}
    write_snapshot(cache, "acme/pickled", {**pickled, "pytorch_model.bin": b"x"})
    write_snapshot(cache, "acme/truncated", dg_files(**{"model.safetensors": b"\x10\x00"}))
    (cache / "datasets--acme--data" / "snapshots" / COMMIT).mkdir(parents=True)
    entries = {e.name: e for e in find_checkpoints(machine=NO_GPU)}
    assert not entries["acme/llama"].usable
    assert "a 'llama' model; diffedit runs diffusion_gemma" in entries["acme/llama"].reason
    assert not entries["acme/pickled"].usable and "only pickle weights" in entries["acme/pickled"].reason
    assert not entries["acme/truncated"].usable and "damaged" in entries["acme/truncated"].reason
    assert "acme/data" not in entries
    order = [e.usable for e in find_checkpoints(machine=NO_GPU)]
    assert order == sorted(order, reverse=True)  # usable ones first


def test_the_demo_is_listed_and_marked(cache: Path) -> None:
    entries = find_checkpoints(machine=NO_GPU)
    (demo,) = [e for e in entries if e.demo]
    assert demo.usable and demo.source == "demo" and demo.path == default_model_path()
    assert demo.parameters > 1_000_000 and demo.dtype == "bf16"
    assert is_demo_model(None) and is_demo_model(str(default_model_path())) and not is_demo_model(cache)


def test_user_folders_are_searched_one_level_deep(cache: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    entries = find_checkpoints([tiny_checkpoint.parent, tmp_path / "missing"], machine=NO_GPU)
    (found,) = [e for e in entries if e.source == "folder"]
    assert found.path == tiny_checkpoint and found.usable and found.name == tiny_checkpoint.name
    direct = find_checkpoints([tiny_checkpoint], machine=NO_GPU)
    assert [e.path for e in direct if e.source == "folder"] == [tiny_checkpoint]


def test_weight_stats_read_headers_only(tmp_path: Path) -> None:
    save_file(TENSORS, str(tmp_path / "a.safetensors"))
    save_file({"lm_head.weight": torch.zeros(3, 4, dtype=torch.bfloat16)}, str(tmp_path / "b.safetensors"))
    stats = weight_stats([tmp_path / "a.safetensors", tmp_path / "b.safetensors"])
    # the output head shares the embeddings in DiffusionGemma: kept as stored, like them
    assert stats == WeightStats(parameters=136, quantisable=64 + 16, dtypes=("bf16", "f32"))
    assert not is_quantisable("model.embed_tokens.weight", (10, 4))
    assert not is_quantisable("model.decoder.layers.0.router.proj.weight", (128, 2816))  # decides routing
    assert not is_quantisable("model.norm.weight", (4,))
    assert is_quantisable("model.layers.3.mlp.experts.down_proj", (128, 704, 2816))


def test_memory_estimates_shrink_only_the_quantisable_weights() -> None:
    stats = WeightStats(parameters=10 * 10**9, quantisable=8 * 10**9, dtypes=("bf16",))
    ram_10gb = MachineMemory(ram_total=16 * 10**9, ram_available=10 * 10**9)
    loads = {ld.mode: ld for ld in estimate_loads(stats, overhead=10**9, machine=ram_10gb)}
    assert loads["bf16"].bytes == 20 * 10**9 + 10**9
    assert loads["int8"].bytes == pytest.approx(4 * 10**9 + 8 * 10**9 * INT8_BYTES_PER_PARAM + 10**9, abs=1)
    assert loads["int4"].bytes == pytest.approx(4 * 10**9 + 8 * 10**9 * INT4_BYTES_PER_PARAM + 10**9, abs=1)
    assert {m: ld.fits for m, ld in loads.items()} == {
        "bf16": False,
        "int8": False,
        "int4": True,
        "offloaded": False,
    }
    assert loads["int4"].where == "RAM" and loads["offloaded"].note == "needs a CUDA GPU"
    gpu = MachineMemory(16 * 10**9, 8 * 10**9, "cuda:0 test", gpu_total=24 * 10**9, gpu_free=14 * 10**9)
    on_gpu = {ld.mode: ld for ld in estimate_loads(stats, overhead=10**9, machine=gpu)}
    assert {m: ld.fits for m, ld in on_gpu.items()} == {
        "bf16": False,
        "int8": True,
        "int4": True,
        "offloaded": True,
    }
    assert on_gpu["bf16"].where == "GPU" and on_gpu["offloaded"].where == "GPU+RAM"


def test_a_repo_id_resolves_to_its_cached_snapshot(cache: Path) -> None:
    snapshot = write_snapshot(cache, "acme/dg", dg_files())
    assert resolve_model("acme/dg") == str(snapshot)
    assert resolve_model(None) is None
    with pytest.raises(ModelLoadError, match=r"diffedit models pull acme/other"):
        resolve_model("acme/other")


def test_the_offloaded_column_asks_the_loaders_planner_not_the_sum_of_gpu_and_ram() -> None:
    """GPU + RAM hold the demo's 34 MB many times over, but a GPU with 1 MB free cannot hold the resident
    parts, one layer's room and the runtime: the loader would refuse the split, so the catalogue says so."""
    demo = default_model_path()
    tiny_gpu = MachineMemory(16 * 10**9, 8 * 10**9, "cuda:0 test", gpu_total=10**6, gpu_free=10**6)
    entry = describe_checkpoint(demo, "demo", "demo", tiny_gpu)
    offloaded = {ld.mode: ld for ld in entry.loads}["offloaded"]
    assert offloaded.bytes <= tiny_gpu.gpu_free + tiny_gpu.ram_available  # the rough test would say it fits
    assert not offloaded.fits and "no split fits" in offloaded.note
    roomy_gpu = MachineMemory(16 * 10**9, 8 * 10**9, "cuda:0 test", gpu_total=4 * 10**9, gpu_free=2 * 10**9)
    assert {ld.mode: ld for ld in describe_checkpoint(demo, "demo", "demo", roomy_gpu).loads}[
        "offloaded"
    ].fits
