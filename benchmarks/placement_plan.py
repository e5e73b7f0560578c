"""What the loader decides for the 26B-A4B shape on a few machines, from the safetensors headers alone.

Writes the full 26B-A4B shape as *sparse* safetensors files (the headers, then a hole as long as the data:
no disk space, nothing to read), then asks ``loader.check_fits`` what each choice of weights does on each
machine: fits the GPU whole, runs split between the GPU and RAM (with the split), or is refused (with the
message). The numbers are the loader's estimate, the same one every load checks first; no weight is read.

    python benchmarks/placement_plan.py
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from big_shape import DEMO, build_config, stored_shapes

from diffedit.engine.catalog import MachineMemory
from diffedit.engine.loader import check_fits, inspect_checkpoint
from diffedit.engine.types import ModelLoadError

GiB = 1024**3
MACHINES = {
    "24 GB GPU (RTX 4090), 64 GB RAM": MachineMemory(64 * GiB, 60 * GiB, "cuda:0 24 GB", 24 * GiB, 23 * GiB),
    "16 GB GPU, 32 GB RAM": MachineMemory(32 * GiB, 28 * GiB, "cuda:0 16 GB", 16 * GiB, 15 * GiB),
    "8 GB GPU, 16 GB RAM": MachineMemory(16 * GiB, 13 * GiB, "cuda:0 8 GB", 8 * GiB, 7 * GiB),
}


def sparse_checkpoint(folder: Path) -> None:
    config = build_config("26b")
    config.save_pretrained(folder)  # type: ignore[attr-defined]
    shutil.copy(DEMO / "tokenizer.json", folder / "tokenizer.json")
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (shape, _) in sorted(stored_shapes(config).items()):
        n = 2 * math.prod(shape)
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path = folder / "model.safetensors"
    with path.open("wb") as fh:
        fh.write(len(raw).to_bytes(8, "little"))
        fh.write(raw)
        fh.truncate(8 + len(raw) + offset)  # a hole: no blocks on disk


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "dg26b-shape"
        folder.mkdir()
        sparse_checkpoint(folder)
        info = inspect_checkpoint(folder)
        for machine_name, machine in MACHINES.items():
            print(f"## {machine_name}")
            for mode in ("none", "int8", "int4"):
                try:
                    plan = check_fits(info, mode, "cuda", 2, machine, "auto")
                    outcome = "fits the GPU whole" if plan is None else f"split: {plan.describe()}"
                except ModelLoadError as exc:
                    outcome = f"refused: {exc}"
                print(f"- {mode}: {outcome}")
            print()


if __name__ == "__main__":
    main()
