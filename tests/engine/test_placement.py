"""Splitting a model between the GPU and RAM: the plan (a pure function of sizes and free memory), the
check before loading that chooses it or refuses with what fits, and the hooked layers run through the real
engine on the CPU (layers on disk or copied in from RAM) with the same output as the plain load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from diffedit.engine.catalog import MachineMemory
from diffedit.engine.engine import Engine
from diffedit.engine.loader import check_fits, inspect_checkpoint, load_model, memory_needed
from diffedit.engine.placement import (
    DECODER_LAYERS,
    ENCODER_LAYERS,
    ModelParts,
    Placement,
    gpu_floor,
    is_offloaded,
    model_parts,
    plan_placement,
)
from diffedit.engine.quant_load import quantised_size
from diffedit.engine.types import EditRequest, GenerationSettings, ModelLoadError, RewriteJob

GB = 10**9
# 8 layers of 10 GB, 5 GB that stay on the GPU (embeddings, norms, head), 1 GB vision tower, 3 GB to run
PARTS = ModelParts(layers=(10 * GB,) * 8, resident=5 * GB, unused=1 * GB)
RUNTIME = 3 * GB


# --- the plan ---------------------------------------------------------------------------------------------


def test_a_model_that_fits_the_gpu_is_not_split() -> None:
    whole = PARTS.total + RUNTIME
    plan = plan_placement(PARTS, RUNTIME, gpu_free=whole, ram_free=0)
    assert plan is not None and not plan.offloaded and plan.gpu_layers == 8
    assert set(plan.device_map().values()) == {"cuda:0"}
    assert plan.bytes_per_device() == {"cuda:0": PARTS.total}


def test_the_first_layers_that_fit_go_to_the_gpu_the_rest_to_ram_whole() -> None:
    # room for the resident parts, the runtime, one offloaded layer copied in while it runs, and 3 layers
    gpu = gpu_floor(PARTS, RUNTIME) + 3 * 10 * GB + 9 * GB  # 9 GB more is not a fourth layer
    plan = plan_placement(PARTS, RUNTIME, gpu_free=gpu, ram_free=100 * GB)
    assert plan is not None and plan.offloaded and plan.gpu_layers == 3
    dmap = plan.device_map()
    for i in range(8):
        want = "cuda:0" if i < 3 else "cpu"
        # the encoder's layer i shares its weights with the decoder's: one device for both, never split
        assert dmap[f"{DECODER_LAYERS}.{i}"] == dmap[f"{ENCODER_LAYERS}.{i}"] == want
    assert dmap["lm_head"] == dmap["model.decoder.embed_tokens"] == "cuda:0"
    assert dmap["model.encoder.vision_tower"] == "cpu"
    assert plan.layers_per_device() == {"cuda:0": 3, "cpu": 5}
    assert plan.bytes_per_device() == {"cuda:0": 35 * GB, "cpu": 51 * GB}
    assert sum(plan.bytes_per_device().values()) == PARTS.total
    summary = plan.summary()
    assert summary["offloaded"] and summary["layers"] == 8 and summary["main_device"] == "cuda:0"
    assert "3 of 8 layers on cuda:0" in plan.describe() and "no CUDA graphs" in plan.describe()


def test_uneven_layers_are_placed_in_order_and_never_split() -> None:
    parts = ModelParts(layers=(4, 6, 4, 4), resident=2)
    # floor: 2 + 1 + 6 (the largest layer, copied in) = 9; then 10 bytes: layers 0 (4) and 1 (6), not 2
    plan = plan_placement(parts, 1, gpu_free=19, ram_free=100)
    assert plan is not None and plan.gpu_layers == 2
    assert plan.bytes_per_device() == {"cuda:0": 12, "cpu": 8}


def test_no_split_when_the_gpu_cannot_hold_its_floor_or_ram_the_rest() -> None:
    floor = gpu_floor(PARTS, RUNTIME)
    assert plan_placement(PARTS, RUNTIME, gpu_free=floor - 1, ram_free=10**15) is None
    zero = plan_placement(PARTS, RUNTIME, gpu_free=floor, ram_free=81 * GB)
    assert zero is not None and zero.gpu_layers == 0  # every layer copied in: slow, but it runs
    assert plan_placement(PARTS, RUNTIME, gpu_free=floor, ram_free=81 * GB - 1) is None


# --- the check before loading: split where it fits, else refuse naming what fits --------------------------


def _gpu(gpu_free: int, ram_free: int) -> MachineMemory:
    return MachineMemory(ram_free, ram_free, "cuda:0 test GPU", gpu_free, gpu_free)


def test_a_choice_too_big_for_the_gpu_is_split_with_offload_auto(tiny_checkpoint: Path) -> None:
    info = inspect_checkpoint(tiny_checkpoint)
    parts = model_parts(info.weight_files, "none", 4, 2)
    assert parts.total == quantised_size(info.weight_files, "none", 4)  # the same bytes the loader holds
    weights, runtime = memory_needed(info, "none", 4)
    gpu = gpu_floor(parts, runtime) + parts.layers[0]  # one layer's room beyond the floor
    plan = check_fits(info, "none", "cuda", 4, _gpu(gpu, 10 * GB), "auto")
    assert plan is not None and plan.offloaded and plan.gpu_layers == 1 and plan.main == "cuda:0"
    assert check_fits(info, "none", "cuda", 4, _gpu(weights + runtime, 0), "auto") is None  # fits whole
    with pytest.raises(ModelLoadError) as refused:
        check_fits(info, "none", "cuda", 4, _gpu(gpu, 10 * GB), "none")
    message = str(refused.value)
    assert "does not fit" in message and "with --offload auto it fits split" in message
    assert "1 of 2 layers on cuda:0" in message


def test_a_choice_that_fits_neither_way_names_the_estimate_and_a_choice_that_fits(
    tiny_checkpoint: Path,
) -> None:
    info = inspect_checkpoint(tiny_checkpoint)
    _, runtime = memory_needed(info, "none", 4)
    int4 = model_parts(info.weight_files, "int4", 4, 2)
    # the GPU holds int4's floor but not bf16's; nothing fits it whole
    gpu = gpu_floor(int4, runtime)
    assert gpu < gpu_floor(model_parts(info.weight_files, "none", 4, 2), runtime)
    with pytest.raises(ModelLoadError) as refused:
        check_fits(info, "none", "cuda", 4, _gpu(gpu, 10 * GB), "auto")
    message = str(refused.value)
    assert "does not fit: loading it unquantised on cuda needs about" in message
    assert "split between the GPU and RAM it needs at least" in message
    assert "--quantize int" in message and "--offload auto it fits split" in message
    with pytest.raises(ModelLoadError, match="even --quantize int4 needs about"):
        check_fits(info, "none", "cuda", 4, _gpu(10**6, 10**6), "auto")


def test_offloading_is_for_cuda_only(tiny_checkpoint: Path) -> None:
    info = inspect_checkpoint(tiny_checkpoint)
    # loading on the CPU with too little RAM is refused, though the machine has a GPU with room to spare
    with pytest.raises(ModelLoadError, match="free RAM"):
        check_fits(info, "none", "cpu", 4, MachineMemory(10**6, 10**6, "cuda:0 test GPU", GB, GB), "auto")


def test_fp8_is_refused_where_the_model_would_be_split(tiny_checkpoint: Path) -> None:
    info = inspect_checkpoint(tiny_checkpoint)
    plan = Placement("cpu", 1, model_parts(info.weight_files, "none", 4, 2), offload_to="disk")
    with pytest.raises(ModelLoadError, match="--fp8 needs the whole model on the GPU"):
        load_model(tiny_checkpoint, device="cpu", dtype="fp32", fp8=True, placement=plan)


# --- the hooked layers through the real engine, on the CPU -------------------------------------------------

DOC = "# Notes\n\nThe first paragraph says hello.\n\nThe second one is the target of the rewrite.\n\nEnd.\n"


def _job(seed: int) -> RewriteJob:
    start, end = DOC.index("The second"), DOC.index("\n\nEnd.")
    settings = GenerationSettings(seed=seed, steps=4)  # a few steps: every one runs every layer
    return RewriteJob(EditRequest.from_document(DOC, start, end), settings, job_id=1)


@pytest.mark.parametrize(
    ("mode", "offload_to"),
    [
        ("none", "disk"),  # transformers' from_pretrained(device_map) + accelerate's disk offload
        ("int8", "cpu"),  # diffedit's quantising loader + one hook per layer, its weights in RAM
        ("int4", "cpu"),
    ],
)
def test_a_split_model_rewrites_as_the_plain_load_does(
    tiny_checkpoint: Path, mode: str, offload_to: str
) -> None:
    info = inspect_checkpoint(tiny_checkpoint)
    plan = Placement("cpu", 1, model_parts(info.weight_files, mode, 4, 2), offload_to=offload_to)
    plain = load_model(tiny_checkpoint, device="cpu", dtype="fp32", quantize=mode)
    split = load_model(tiny_checkpoint, device="cpu", dtype="fp32", quantize=mode, placement=plan)
    assert split.placement is plan and is_offloaded(split.model) and not is_offloaded(plain.model)
    # the whole model, wherever it is held (the estimate also counts each layer's stored scalar)
    assert 0 <= split.weight_bytes - plain.weight_bytes < 64
    offloaded = split.model.model.decoder.layers[1]
    kept = split.model.model.decoder.layers[0]
    assert offloaded._hf_hook.offload and not getattr(getattr(kept, "_hf_hook", None), "offload", False)
    a, b = Engine(plain), Engine(split)
    want, got = a.rewrite(_job(3)), b.rewrite(_job(3))
    assert got.token_ids == want.token_ids and got.text == want.text and got.steps == want.steps
    # between forwards the offloaded layer holds no weights: the hook brought them in and took them away
    assert {t.device.type for t in offloaded.parameters()} == {"meta"}
    assert {t.device.type for t in kept.parameters()} == {"cpu"}


def test_a_split_model_runs_neither_the_compiled_step_nor_graphs(tiny_checkpoint: Path) -> None:
    from diffedit.engine.fused_step import fusable

    info = inspect_checkpoint(tiny_checkpoint)
    plan = Placement("cpu", 1, model_parts(info.weight_files, "int8", 4, 2), offload_to="cpu")
    split = load_model(tiny_checkpoint, device="cpu", dtype="fp32", quantize="int8", placement=plan)
    assert "split between the GPU and RAM" in str(fusable(split.model))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: the real GPU + RAM split")
@pytest.mark.parametrize("mode", ["none", "int8"])
def test_on_cuda_a_model_too_big_for_the_gpu_runs_split_as_it_runs_whole(
    tiny_checkpoint: Path, mode: str
) -> None:  # pragma: no cover - CUDA only (not run on the dev machine)
    info = inspect_checkpoint(tiny_checkpoint)
    dtype_bytes = 2
    parts = model_parts(info.weight_files, mode, dtype_bytes, 2)
    runtime = memory_needed(info, mode, dtype_bytes)[1]
    machine = _gpu(gpu_floor(parts, runtime) + parts.layers[0], 64 * GB)
    whole = load_model(
        tiny_checkpoint, device="cuda", dtype="bf16", quantize=mode, machine=_gpu(64 * GB, 64 * GB)
    )
    split = load_model(tiny_checkpoint, device="cuda", dtype="bf16", quantize=mode, machine=machine)
    assert whole.placement is None and split.placement is not None and split.placement.gpu_layers == 1
    for seed in (3, 4):
        want, got = Engine(whole).rewrite(_job(seed)), Engine(split).rewrite(_job(seed))
        assert got.token_ids == want.token_ids


def test_a_split_model_runs_no_graph_even_where_graphs_are_supported(
    tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffedit.engine import cuda_graph
    from diffedit.engine import denoise as denoise_mod
    from diffedit.engine.denoise import DenoiseOptions, denoise
    from diffedit.engine.sampling import SamplerConfig
    from tests.engine.test_cuda_graph import CpuOps

    ops = CpuOps()  # the graphed loop on the CPU: "captures" run eagerly and are counted
    monkeypatch.setattr(denoise_mod, "graphs_supported", lambda device: True)
    monkeypatch.setattr(cuda_graph, "CudaOps", lambda: ops)
    info = inspect_checkpoint(tiny_checkpoint)
    plan = Placement("cpu", 1, model_parts(info.weight_files, "int8", 4, 2), offload_to="cpu")
    plain = load_model(tiny_checkpoint, device="cpu", dtype="fp32", quantize="int8")
    split = load_model(tiny_checkpoint, device="cpu", dtype="fp32", quantize="int8", placement=plan)
    tok = plain.tokenizer
    cfg = SamplerConfig(6, 0.1, 0.1, 0.3, 1, 1e-30)  # no early stop: 6 steps, graphed from the 4th on
    options = DenoiseOptions(cfg, frozenset({tok.eos_token_id}), tok.pad_token_id)
    prompt = [tok.bos_token_id, *tok.encode("Some text to read first.", add_special_tokens=False)]
    graphed = denoise(plain.model, prompt, options, torch.Generator().manual_seed(2))
    assert graphed.graphed is True and ops.captures > 0  # the plain model takes the graphed loop
    ops.captures = 0
    eager = denoise(split.model, prompt, options, torch.Generator().manual_seed(2))
    assert eager.graphed is None and ops.captures == 0  # the split one never does
