#!/usr/bin/env bash
# The whole GPU benchmark as one device call (see docs/benchmarks.md):
#
#   bash benchmarks/gpu_run.sh                 # results in $OUT (the device tool's folder) or ./gpu-out
#   bash benchmarks/gpu_run.sh --no-fp8        # extra arguments go to gpu_step.py
#
# A lent machine's image may ship a transformers older than the 5.24 this project needs: then the wheel in
# .whl/ (carried with the call) is installed into a side folder, leaving the image's packages as they are.
# Get the wheel first, on a machine with a package index:
#   pip download transformers==5.24.0 --no-deps -d .whl
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ! python3 - <<'PY'
import sys
import transformers
from packaging.version import Version
sys.exit(Version(transformers.__version__) < Version("5.24"))
PY
then
    if ! ls .whl/transformers-*.whl >/dev/null 2>&1; then
        echo "gpu_run.sh: this machine's transformers is older than 5.24 and .whl/ holds no wheel;" \
             "run 'pip download transformers==5.24.0 --no-deps -d .whl' and carry .whl" >&2
        exit 2
    fi
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi
out="${OUT:-gpu-out}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out/gpu.txt" || true
python3 benchmarks/gpu_step.py --preset 26b --ctx 512 4096 --steps 48 --reps 2 --out "$out" "$@" 2>&1 | tee "$out/gpu_step.log"
