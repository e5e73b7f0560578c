"""Safe loading: each bad model folder fails with a message naming what is wrong."""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from pathlib import Path

import pytest

from diffedit.engine.loader import (
    cpu_has_native_bf16,
    inspect_checkpoint,
    load_model,
    pick_device,
    pick_dtype,
)
from diffedit.engine.types import ModelLoadError


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        inspect_checkpoint(tmp_path / "nope")


def test_file_instead_of_folder(tmp_path: Path) -> None:
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="is a file, not a folder"):
        inspect_checkpoint(f)


def test_not_a_checkpoint_names_what_was_found(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ModelLoadError, match=r"no config.json \(found: notes.txt\)"):
        inspect_checkpoint(tmp_path)


def test_other_architecture_says_what_is_supported(tiny_checkpoint: Path, tmp_path: Path) -> None:
    ck = _copy(tiny_checkpoint, tmp_path / "llama")
    cfg = json.loads((ck / "config.json").read_text())
    cfg["model_type"] = "llama"
    (ck / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="holds a 'llama' model; diffedit supports diffusion_gemma"):
        inspect_checkpoint(ck)


def test_pickle_weights_are_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    ck = _copy(tiny_checkpoint, tmp_path / "pickled")
    (ck / "model.safetensors").rename(ck / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match=r"only pickle weights \(pytorch_model.bin\).*safetensors only"):
        load_model(ck)


def test_truncated_weights_name_the_file(tiny_checkpoint: Path, tmp_path: Path) -> None:
    ck = _copy(tiny_checkpoint, tmp_path / "truncated")
    weights = ck / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match=r"model.safetensors is damaged \(truncated"):
        load_model(ck)


def test_garbage_config_is_named(tiny_checkpoint: Path, tmp_path: Path) -> None:
    ck = _copy(tiny_checkpoint, tmp_path / "badcfg")
    (ck / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match=r"config\.json is not valid JSON"):
        inspect_checkpoint(ck)


def test_missing_tokenizer(tiny_checkpoint: Path, tmp_path: Path) -> None:
    ck = _copy(tiny_checkpoint, tmp_path / "notok")
    (ck / "tokenizer.json").unlink()
    with pytest.raises(ModelLoadError, match="no tokenizer"):
        inspect_checkpoint(ck)


def test_missing_shard_from_index(tiny_checkpoint: Path, tmp_path: Path) -> None:
    ck = _copy(tiny_checkpoint, tmp_path / "sharded")
    (ck / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "model.safetensors", "b": "model-00002-of-00002.safetensors"}})
    )
    with pytest.raises(ModelLoadError, match=r"model-00002-of-00002\.safetensors"):
        inspect_checkpoint(ck)


def test_weights_that_do_not_fit_the_config(tiny_checkpoint: Path, tmp_path: Path) -> None:
    ck = _copy(tiny_checkpoint, tmp_path / "mismatch")
    cfg = json.loads((ck / "config.json").read_text())
    cfg["text_config"]["hidden_size"] = 96
    (ck / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="do not load"):
        load_model(ck)


def test_loads_without_remote_code_and_picks_the_dtype(tiny_checkpoint: Path) -> None:
    import torch

    loaded = load_model(tiny_checkpoint)
    expected = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    assert loaded.device == "cpu" and loaded.dtype == expected == loaded.model.dtype
    assert loaded.context_format.name == "infill"
    assert pick_dtype("cuda") == torch.bfloat16
    assert pick_dtype("cpu", weight_bytes=50 * 1024**3) == torch.bfloat16  # a 26B model stays bf16 on the CPU
    assert pick_dtype("cpu", "bf16") == torch.bfloat16
    assert pick_dtype("cpu", "fp32") == torch.float32


@pytest.mark.parametrize(
    ("flags", "native"),
    [
        ("fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni", True),  # Zen 4, Cooper Lake
        ("fpu sse2 avx2 avx512f amx_bf16 amx_tile", True),  # Sapphire Rapids
        ("fpu sse2 avx2 avx512f avx512_vnni", False),  # AVX-512 without bf16: fp32 is faster there
        ("fpu sse2 avx2", False),
    ],
)
def test_the_cpu_runs_bf16_only_where_it_multiplies_bf16_natively(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: str, native: bool
) -> None:
    import torch

    from diffedit.engine import loader

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n\n")
    assert cpu_has_native_bf16(str(cpuinfo)) is native
    assert cpu_has_native_bf16(str(tmp_path / "missing")) is False
    monkeypatch.setattr(loader, "cpu_has_native_bf16", lambda: native)
    assert pick_dtype("cpu") == (torch.bfloat16 if native else torch.float32)
    assert pick_dtype("cpu", "fp32") == torch.float32  # the user's choice wins


def test_remote_code_only_when_the_user_opts_in(
    tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers

    seen: list[dict[str, object]] = []
    real_model = transformers.DiffusionGemmaForBlockDiffusion.from_pretrained.__func__  # type: ignore[attr-defined]

    def spy(cls, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(kwargs)
        return real_model(cls, *args, **kwargs)

    monkeypatch.setattr(transformers.DiffusionGemmaForBlockDiffusion, "from_pretrained", classmethod(spy))
    tokenizer_loads: list[dict[str, object]] = []
    real_tokenizer = transformers.AutoTokenizer.from_pretrained.__func__  # type: ignore[attr-defined]

    def tokenizer_spy(cls, *args, **kwargs):  # type: ignore[no-untyped-def]
        tokenizer_loads.append(kwargs)
        return real_tokenizer(cls, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", classmethod(tokenizer_spy))
    load_model(tiny_checkpoint)
    load_model(tiny_checkpoint, trust_remote_code=True)
    assert [k["trust_remote_code"] for k in seen] == [False, True]
    assert all(k["local_files_only"] and k["use_safetensors"] for k in seen)
    # The tokenizer can ship code too: the same opt-in, and never read from the network.
    assert [k.get("trust_remote_code") for k in tokenizer_loads] == [False, True]
    assert all(k["local_files_only"] for k in tokenizer_loads)


def test_loading_and_rewriting_never_touch_the_network(
    tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from diffedit.engine.engine import Engine
    from diffedit.engine.types import EditRequest, GenerationSettings, RewriteJob

    def no_network(*_a: object, **_k: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    engine = Engine.load(tiny_checkpoint)
    result = engine.rewrite(
        RewriteJob(EditRequest("a\n\n", "b", "\n\nc"), GenerationSettings(seed=1, steps=2))
    )
    assert result.steps >= 2


# ------------------------------------------------------------------------------------------ bad files, named


def _edit_json(path: Path, change: object) -> None:
    """Replace ``path``'s JSON with ``change`` (a value), or apply it (a function of the parsed data)."""
    data = json.loads(path.read_text()) if path.exists() else None
    path.write_text(json.dumps(change(data) if callable(change) else change))


def _without(key: str) -> object:
    return lambda data: {k: v for k, v in data.items() if k != key}


@pytest.mark.parametrize(
    ("file", "change", "message"),
    [
        ("config.json", [], r"config\.json holds a JSON list, not a JSON object"),
        (
            "config.json",
            lambda c: {**c, "text_config": 5},
            r"config\.json: field 'text_config' is 5 .*an object",
        ),
        (
            "config.json",
            lambda c: {**c, "text_config": {**c["text_config"], "hidden_size": "64"}},
            r"config\.json: field 'text_config\.hidden_size' is \"64\" .*a positive whole number",
        ),
        ("config.json", _without("model_type"), r"config\.json: field 'model_type' is missing"),
        ("diffedit_infill.json", [1, 2], r"diffedit_infill\.json holds a JSON list, not a JSON object"),
        (
            "diffedit_infill.json",
            lambda d: {**d, "context_tokens": -3},
            r"diffedit_infill\.json: field 'context_tokens' is -3",
        ),
        ("generation_config.json", [3], r"generation_config\.json holds a JSON list"),
        ("tokenizer.json", _without("added_tokens"), r"tokenizer\.json: field 'added_tokens' is missing"),
        (
            "tokenizer.json",
            lambda t: {**t, "added_tokens": [{"content": "<pad>"}]},
            r"tokenizer\.json: field 'added_tokens\[0\]\.id' is missing",
        ),
        ("tokenizer_config.json", "just a string", r"tokenizer_config\.json holds a JSON string"),
    ],
)
def test_json_files_are_checked_against_what_the_loader_needs(
    tiny_checkpoint: Path, tmp_path: Path, file: str, change: object, message: str
) -> None:
    ck = _copy(tiny_checkpoint, tmp_path / "bad")
    _edit_json(ck / file, change)
    with pytest.raises(ModelLoadError, match=message) as info:
        inspect_checkpoint(ck)
    assert "\n" not in str(info.value) and "re-download" in str(info.value)


def test_a_weight_shape_mismatch_names_the_tensor_and_both_shapes(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    ck = _copy(tiny_checkpoint, tmp_path / "mismatch")
    cfg = json.loads((ck / "config.json").read_text())
    cfg["text_config"]["intermediate_size"] = cfg["text_config"]["intermediate_size"] * 2
    (ck / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError) as info:
        load_model(ck)
    message = str(info.value)
    assert "above report" not in message and "\n" not in message
    assert "model.safetensors" in message and "config.json" in message
    assert re.search(
        r"'[\w.]+mlp[\w.]+' has shape \[\d+, \d+\] in the weights, config\.json needs \[\d+, \d+\]", message
    )


@pytest.mark.parametrize("name", ["model.safetensors", "config.json", "tokenizer.json"])
def test_a_fifo_in_the_checkpoint_is_refused_without_hanging(
    tiny_checkpoint: Path, tmp_path: Path, name: str
) -> None:
    ck = _copy(tiny_checkpoint, tmp_path / "fifo")
    (ck / name).unlink()
    os.mkfifo(ck / name)
    result: list[BaseException] = []

    def inspect() -> None:
        try:
            inspect_checkpoint(ck)
        except BaseException as exc:  # handed to the test
            result.append(exc)

    thread = threading.Thread(target=inspect, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():  # the bug: unblock the reader before failing
        os.close(os.open(ck / name, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"inspect_checkpoint blocked on the FIFO {name}")
    (error,) = result
    assert isinstance(error, ModelLoadError)
    assert f"{name} is a named pipe (FIFO), not a regular file" in str(error)


def test_a_fifo_as_the_model_path_says_what_it_is(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "model")
    with pytest.raises(ModelLoadError, match=r"is a named pipe \(FIFO\), not a folder"):
        inspect_checkpoint(tmp_path / "model")


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("foo", r"unknown device 'foo'.*cpu, cuda"),
        ("cuda:x", r"unknown device 'cuda:x'"),
        ("vulkan", r"diffedit runs on cpu, cuda or mps, not 'vulkan'"),
    ],
)
def test_a_device_that_is_not_one_is_named(device: str, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        pick_device(device)


def test_cuda_without_cuda_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelLoadError, match=r"CUDA is not available.*--device cpu"):
        pick_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ModelLoadError, match=r"there is no GPU cuda:3.*has 1"):
        pick_device("cuda:3")
    assert pick_device("cuda:0") == "cuda:0"
    assert pick_device("cpu") == "cpu"
