#!/usr/bin/env bash
# The whole GPU benchmark as one device call (see docs/benchmarks.md):
#
#   bash benchmarks/gpu_run.sh                 # results in $OUT (the device tool's folder) or ./gpu-out
#   bash benchmarks/gpu_run.sh --no-fp8        # extra arguments go to gpu_step.py
#
# A lent machine's image may ship a transformers older than the 5.24 this project needs: see gpu_env.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source benchmarks/gpu_env.sh
out="${OUT:-gpu-out}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out/gpu.txt" || true
python3 benchmarks/gpu_step.py --preset 26b --ctx 512 4096 --steps 48 --reps 2 --out "$out" "$@" 2>&1 | tee "$out/gpu_step.log"
