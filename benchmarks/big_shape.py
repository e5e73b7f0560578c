"""The real DiffusionGemma 26B-A4B shape on a small machine: write it, load it in int4, run one step.

Writes a bf16 safetensors checkpoint of the full 26B-A4B shape (random weights, ~50 GB, in 5 GB shards)
one tensor at a time (never the model in memory), with the bundled demo's tokenizer and infill format
(token ids beyond that tokenizer are fine for random weights: the point is the weights' shape). Then runs

    python -m diffedit rewrite DOC --model DIR --quantize int4 --steps 1 --free-form --json

in a subprocess and reports its peak resident memory (the children's ``ru_maxrss``), wall time, load time
(wall time minus the rewrite's own ``total_s``; it includes Python's start and imports) and step times;
then deletes the checkpoint, whatever happened.

    nice -n 5 python benchmarks/big_shape.py /tmp/dg26b --preset 26b
    python benchmarks/big_shape.py /tmp/dg-tiny --preset tiny        # the same path on a small shape

Prints one ``RESULT {...}`` JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from gpu_step import PRESETS as GPU_PRESETS

from diffedit.engine.loader import default_model_path
from diffedit.training.model_config import TINY_VISION

ROOT = Path(__file__).resolve().parent.parent
DEMO = default_model_path()  # the bundled demo: its tokenizer and infill format go with the written weights
SHARD_BYTES = 5 * 1000**3

# The 26B-A4B text config (gpu_step.py's, as shared/bench/hf_reference_dg.py has it) and a small one for
# trying the script.
PRESETS: dict[str, dict[str, object]] = {
    "tiny": dict(
        vocab_size=8192,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=64,
        global_head_dim=64,
        num_experts=8,
        top_k_experts=2,
        moe_intermediate_size=128,
    ),
    "26b": dict(GPU_PRESETS["26b"]),
}
DOC = "# Notes\n\nThe quick brown fox jumps over the lazy dog.\n\nA second paragraph.\n"


def build_config(preset: str) -> object:
    from transformers import DiffusionGemmaConfig, DiffusionGemmaTextConfig

    demo = json.loads((DEMO / "config.json").read_text(encoding="utf-8"))
    ids = {k: demo["text_config"][k] for k in ("bos_token_id", "eos_token_id", "pad_token_id")}
    fields = (
        DiffusionGemmaTextConfig.__dataclass_fields__
        if hasattr(DiffusionGemmaTextConfig, "__dataclass_fields__")
        else {}
    )
    extra = ("global_head_dim", "num_global_key_value_heads")
    kw = {k: v for k, v in PRESETS[preset].items() if not fields or k in fields or k in extra}
    text = DiffusionGemmaTextConfig(max_position_embeddings=32768, **kw, **ids)
    return DiffusionGemmaConfig(
        text_config=text.to_dict(),
        vision_config=TINY_VISION,
        canvas_length=256,
        bos_token_id=ids["bos_token_id"],
        eos_token_id=ids["eos_token_id"],
        pad_token_id=ids["pad_token_id"],
    )


def stored_shapes(config: object) -> dict[str, tuple[tuple[int, ...], str]]:
    """Name -> (shape, kind) of what a saved checkpoint holds: tied tensors once, by their decoder names."""
    from accelerate import init_empty_weights
    from transformers import DiffusionGemmaForBlockDiffusion

    with init_empty_weights():
        model = DiffusionGemmaForBlockDiffusion._from_config(config, dtype=torch.bfloat16)
    model.tie_weights()
    groups: dict[int, list[str]] = {}
    shapes: dict[int, tuple[tuple[int, ...], str]] = {}
    for mod_name, module in model.named_modules(remove_duplicate=False):
        for kind, table in (("param", module._parameters), ("buffer", module._buffers)):
            for attr, t in table.items():
                if t is None or (kind == "buffer" and attr not in module.state_dict(keep_vars=True)):
                    continue
                if kind == "buffer" and attr in getattr(module, "_non_persistent_buffers_set", set()):
                    continue
                groups.setdefault(id(t), []).append(f"{mod_name}.{attr}")
                shapes[id(t)] = (tuple(t.shape), kind)
    out = {}
    for key, names in groups.items():
        names = sorted(set(names), key=lambda n: ("decoder" not in n, "lm_head" in n, n))
        out[names[0]] = shapes[key]
    return out


class RandomBytes:
    """bf16 N(0, 0.02) values for 2-D and 3-D tensors, cut from one pool of random numbers at a moving
    offset: generating 25 B fresh normal values would take the 2-core machine an hour, and the weights'
    values do not matter here, only their shapes and bytes. 1-D tensors (norms, scales) are ones."""

    POOL = 1 << 25  # 32 Mi values, 64 MB

    def __init__(self, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.pool = (
            (torch.randn(self.POOL, generator=gen) * 0.02).to(torch.bfloat16).view(torch.uint8).numpy()
        )
        self.at = 0

    def chunk(self, shape: tuple[int, ...]) -> bytes:
        if len(shape) < 2:
            return torch.ones(shape, dtype=torch.bfloat16).view(torch.uint8).numpy().tobytes()
        n = 2 * math.prod(shape)
        out = bytearray()
        while len(out) < n:
            take = min(n - len(out), len(self.pool) - self.at)
            out += self.pool[self.at : self.at + take].tobytes()
            self.at = (self.at + take + 2 * 7919) % len(self.pool) & ~1  # shift, keep bf16 alignment
        return bytes(out)


def write_checkpoint(folder: Path, preset: str) -> int:
    """Config, tokenizer, and the weights in shards, each tensor generated and written alone."""
    folder.mkdir(parents=True, exist_ok=True)
    config = build_config(preset)
    config.save_pretrained(folder)  # type: ignore[attr-defined]
    for f in ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "diffedit_infill.json"):
        shutil.copy(DEMO / f, folder / f)
    tensors = sorted(stored_shapes(config).items())
    shards: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    size = 0
    for name, (shape, _) in tensors:
        nbytes = 2 * math.prod(shape)
        if size and size + nbytes > SHARD_BYTES:
            shards.append([])
            size = 0
        shards[-1].append((name, shape))
        size += nbytes
    values = RandomBytes()
    weight_map: dict[str, str] = {}
    total = 0
    for i, shard in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        header: dict[str, object] = {"__metadata__": {"format": "pt"}}
        offset = 0
        for name, shape in shard:
            n = 2 * math.prod(shape)
            header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + n]}
            offset += n
            weight_map[name] = fname
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)
        with (folder / fname).open("wb") as fh:
            fh.write(len(raw).to_bytes(8, "little"))
            fh.write(raw)
            for _, shape in shard:
                # a slice at a time along the first dimension (an expert, or 4096 rows of the embedding)
                rows, step = (shape[0] if shape else 1), (1 if len(shape) == 3 else 4096)
                for first in range(0, rows, step):
                    part = (min(step, rows - first), *shape[1:]) if shape else shape
                    fh.write(values.chunk(part))
        total += offset
        print(f"wrote {fname}: {offset / 1e9:.2f} GB", flush=True)
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index), encoding="utf-8")
    return total


def run_rewrite(folder: Path, quantize: str, steps: int, threads: int | None) -> dict[str, object]:
    with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False, encoding="utf-8") as fh:
        fh.write(DOC)
        doc = fh.name
    cmd = [
        sys.executable,
        "-m",
        "diffedit",
        "rewrite",
        doc,
        "--block",
        "2",
        "--model",
        str(folder),
        "--quantize",
        quantize,
        "--steps",
        str(steps),
        "--seed",
        "0",
        "--free-form",
        "--json",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    os.unlink(doc)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: kilobytes
    out: dict[str, object] = {
        "returncode": proc.returncode,
        "wall_s": round(wall, 1),
        "peak_rss_gb": round(peak_kb / 1e6, 2),
    }
    if proc.returncode != 0:
        out["stderr"] = proc.stderr[-2000:]
        return out
    report = json.loads(proc.stdout)
    out.update(
        load_s=round(wall - float(report["total_s"]), 1),
        total_s=report["total_s"],
        encode_ms=report["encode_ms"],
        step_ms_median=report["step_ms_median"],
        steps=report["steps"],
        quantization=report["quantization"],
        weight_bytes=report["weight_bytes"],
    )
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path, help="where to write the checkpoint (deleted afterwards)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    p.add_argument("--quantize", choices=["none", "int8", "int4"], default="int4")
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--keep", action="store_true", help="keep the checkpoint (default: delete it)")
    p.add_argument(
        "--threads",
        type=int,
        help="torch threads here and in the rewrite (1 where other jobs share the cores)",
    )
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.folder.exists() and any(a.folder.iterdir()):
        print(f"{a.folder} is not empty; give a new folder (it is deleted afterwards)", file=sys.stderr)
        return 2
    result: dict[str, object] = {"preset": a.preset, "machine": machine()}
    try:
        t0 = time.perf_counter()
        result["checkpoint_gb"] = round(write_checkpoint(a.folder, a.preset) / 1e9, 2)
        result["write_s"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(result), flush=True)
        result["threads"] = a.threads or torch.get_num_threads()
        result.update(run_rewrite(a.folder, a.quantize, a.steps, a.threads))
    finally:
        if not a.keep:
            shutil.rmtree(a.folder, ignore_errors=True)
    print("RESULT " + json.dumps(result), flush=True)
    return 0 if result.get("returncode") == 0 else 1


def machine() -> str:
    try:
        import psutil

        ram = f"{psutil.virtual_memory().total / 1e9:.0f} GB RAM"
    except ImportError:
        ram = "RAM ?"
    cpu = "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {ram}, torch {torch.__version__}"


if __name__ == "__main__":
    sys.exit(main())
