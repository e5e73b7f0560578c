#!/usr/bin/env bash
# Train the demo model on a lent GPU as one device call (docs/training.md, "On a lent GPU"):
#
#   bash benchmarks/gpu_train_demo.sh     # the device call; carry .carry and .whl (see gpu_env.sh)
#   bash benchmarks/gpu_train_demo.sh --unpack DIR runs/diffedit-demo-gpu    # back here, DIR = what came back
#
# Before the call, here (a call carries 64 MiB in all, and the tree is ~40 of them):
#   python -m diffedit.training.build_demo --stages corpus
#   mkdir -p .carry && tar -czf .carry/corpus.tar.gz -C data corpus && cp /usr/share/dict/words .carry/
#   pip download transformers==5.24.0 --no-deps -d .whl
#   printf '/.carry/\n/.whl/\n' >> .git/info/exclude
#
# On the device: the corpus unpacked into data/, `build_demo --profile gpu --stages train` (batches of 64,
# the loop fitted to the profile's 6 minutes or to MINUTES, a snapshot at every evaluation), then
# pick_snapshot rewrites the selection blocks with every snapshot on the GPU and copies the best one's
# weights in. The device tool returns at most 8 files of at most 16 MiB, so $OUT (or ./gpu-out) gets run.tar
# (the checkpoint without its weights and snapshots, with the weights' sha256), the weights in 15 MiB
# parts, and the two logs. DEVICE=cpu (and DATA, RUN) try the same script on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--unpack" ]; then
    src=${2:?--unpack DIR DEST}; dest=${3:?--unpack DIR DEST}
    mkdir -p "$dest"
    tar -xf "$src/run.tar" -C "$dest"
    cat "$src"/model.safetensors.part-* > "$dest/model.safetensors"
    (cd "$dest" && sha256sum --check --quiet weights.sha256)
    echo "unpacked into $dest; then: python -m diffedit.training.build_demo --profile gpu --out $dest --stages sweep,evaluate,compare,card"
    exit 0
fi
source benchmarks/gpu_env.sh
export PYTHONUNBUFFERED=1
device=${DEVICE:-cuda}
data=${DATA:-data}
out="${OUT:-gpu-out}"
run=${RUN:-/tmp/diffedit-demo-gpu}
if [ ! -f "$data/corpus/train.jsonl" ] && [ -f .carry/corpus.tar.gz ]; then
    mkdir -p "$data" && tar -xzf .carry/corpus.tar.gz -C "$data"
fi
for need in "$data/corpus/train.jsonl" .carry/words; do
    [ -f "$need" ] || { echo "gpu_train_demo.sh: $need is missing (see the top of this script)" >&2; exit 2; }
done
mkdir -p "$out"
rm -rf "$run"
python3 -m diffedit.training.build_demo --profile gpu --stages train --out "$run" --data "$data" \
    --device "$device" ${MINUTES:+--minutes "$MINUTES"} --threads "$(nproc)" 2>&1 | tee "$out/train.log"
# The training is what the loan is for: if the choice fails, the last step's weights still come back.
if ! python3 -m diffedit.training.pick_snapshot --checkpoint "$run" --data "$data" --setting 0.1:0.3:1.0 \
    --apply --words .carry/words --device "$device" --threads "$(nproc)" --nice 0 2>&1 | tee "$out/pick.log"; then
    echo "gpu_train_demo.sh: pick_snapshot failed; packing the last step's weights (its snapshots stay on the device)" >&2
fi
(cd "$run" && sha256sum model.safetensors > weights.sha256)
tar -cf "$out/run.tar" -C "$run" --exclude=./snapshots --exclude=./model.safetensors .
split -b 15M "$run/model.safetensors" "$out/model.safetensors.part-"
ls -l "$out"
