# Sourced by the device scripts (gpu_run.sh, gpu_train_demo.sh), from the repository root: puts the repo on
# PYTHONPATH and, where the machine's transformers is older than the 5.24 this project needs, installs the
# wheel in .whl/ (carried with the call) into a side folder, leaving the image's packages as they are.
# Get the wheel first, on a machine with a package index:
#   pip download transformers==5.24.0 --no-deps -d .whl
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ! python3 - <<'PY'
import sys
import transformers
from packaging.version import Version
sys.exit(Version(transformers.__version__) < Version("5.24"))
PY
then
    if ! ls .whl/transformers-*.whl >/dev/null 2>&1; then
        echo "this machine's transformers is older than 5.24 and .whl/ holds no wheel;" \
             "run 'pip download transformers==5.24.0 --no-deps -d .whl' and carry .whl" >&2
        exit 2
    fi
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi
