"""How many operations one decoder step launches, eager vs with the compiled step kernels.

On a GPU a captured step's small kernels each cost a few microseconds whatever their size, so their count
predicts much of the step's time beyond the weights' streaming (docs/benchmarks.md). This script counts them
on any machine: it builds the 26B-A4B layer structure (30 layers, sliding and full attention, values equal to
keys on full layers, top-8 routing) at a small width, runs one decoder forward eagerly and one through
:mod:`diffedit.engine.fused_step` compiled, and reports

* the aten operations each forward calls (the outermost ones: an operation another one calls is part of it;
  views and allocations left out unless they copy), by the profiler;
* for the compiled forward, the fused kernels inductor generated per call of each compiled function.

    python benchmarks/step_ops.py
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

# A fresh inductor cache of its own: the generated code read below is this run's.
os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="step-ops-")

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_step

from diffedit.engine.decoder import CanvasDecoder, EncodedContext
from diffedit.engine.fused_step import FusedCanvasDecoder, compiled_kernels
from diffedit.engine.static_cache import StaticCanvasCache

# Operations that launch nothing on a GPU: views, metadata, allocation.
NOT_KERNELS = {
    "aten::view", "aten::reshape", "aten::transpose", "aten::unsqueeze", "aten::slice", "aten::select",
    "aten::expand", "aten::as_strided", "aten::t", "aten::permute", "aten::_unsafe_view", "aten::alias",
    "aten::detach", "aten::lift_fresh", "aten::squeeze", "aten::empty", "aten::empty_strided",
    "aten::resolve_conj", "aten::resolve_neg", "aten::split", "aten::chunk", "aten::unbind",
    "aten::contiguous", "aten::_reshape_alias", "aten::empty_like", "aten::result_type", "aten::set_",
    "aten::resize_",
}  # fmt: skip
# Host reads of a device scalar: the CPU's grouped-mm kernel reads each expert's offset (CUDA's does not).
HOST_READS = {"aten::_local_scalar_dense", "aten::item"}


def _copies(event: object) -> bool:
    """Whether a view-like operation had to copy (a reshape of an expanded tensor does: a kernel)."""
    children = list(getattr(event, "cpu_children", []))
    while children:
        child = children.pop()
        if child.name in ("aten::copy_", "aten::clone"):
            return True
        children.extend(child.cpu_children)
    return False


def _inside_aten(event: object) -> bool:
    parent = getattr(event, "cpu_parent", None)
    while parent is not None:
        if parent.name.startswith("aten::"):
            return True
        parent = parent.cpu_parent
    return False


def main() -> None:
    shape = gpu_step.PRESETS["26b-layers"]
    model = gpu_step.build("26b-layers", "cpu", torch.bfloat16)
    vocab = model.config.text_config.vocab_size
    n, length = 128, 256
    gen = torch.Generator().manual_seed(0)
    result: dict[str, object] = {"shape": shape, "context": n, "canvas": length}
    context = EncodedContext(model)
    with torch.no_grad():
        context.append(torch.randint(3, vocab, (1, n), generator=gen))
        cache, (masks, positions) = context.cache, context.canvas_inputs(torch.device("cpu"))
        canvas = torch.randint(0, vocab, (1, length), generator=gen)
        decoders = {
            "eager": CanvasDecoder(model, masks, cache, positions),
            "compiled": FusedCanvasDecoder(model, masks, cache, positions, compiled_kernels()),
        }
        with StaticCanvasCache(cache, length).installed(model):
            for name, decoder in decoders.items():
                self_cond = decoder(canvas, None).to(model.dtype)
                decoder(canvas, self_cond)  # compiled and warm before counting
                with profile(activities=[ProfilerActivity.CPU]) as prof:
                    decoder(canvas, self_cond)
                ops = Counter(
                    e.name
                    for e in prof.events()
                    if e.name.startswith("aten::")
                    and (e.name not in NOT_KERNELS or _copies(e))
                    and not _inside_aten(e)
                )
                reads = sum(ops.pop(k, 0) for k in HOST_READS)
                result[name] = {
                    "aten_ops_per_forward": sum(ops.values()),
                    "host_scalar_reads": reads,
                    "top": ops.most_common(12),
                }
    per_call = {}
    for path in glob.glob(os.path.join(os.environ["TORCHINDUCTOR_CACHE_DIR"], "**", "*.py"), recursive=True):
        src = Path(path).read_text(encoding="utf-8")
        if "def call(" in src:
            body = src[src.index("def call(") :]
            per_call[Path(path).stem[:10]] = len(re.findall(r"\n\s+cpp_fused_\w+\(", body))
    result["fused_kernels_per_compiled_call"] = per_call
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
