#!/usr/bin/env bash
# The GPU figures of docs/performance.md in one call (under 5 minutes on an H200 with 16 cores):
# optical flow pairs/s at 960x540 (the torch PyramidFlow batched on the device, with DIS's
# variational refinement and without, DIS on a pool of one thread per core) with PyramidFlow's
# bytes and kernels per pair; then end to end at 960x540
# (pipeline alone, f2r-small, stbn-tiny, their flow on the device; then f2r-small with DIS on
# the CPU) and 1920x1080 (f2r-small), with the device's peak memory and
# where each frame's time goes; and which H.264 encoder the machine opens. Carry .whl holding the PyAV
# wheel (the GPU machine has no PyAV) and any checkpoints to time:
#
#   OUT=out WEIGHTS="f2r-small stbn-tiny" scripts/gpu_timing.sh
#
# (DEVICE=cpu SIZE=96x64 BIG=128x96 tries it out on a CPU.)
set -u
OUT=${OUT:-out}
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
SIZE=${SIZE:-960x540}
BIG=${BIG:-1920x1080}
mkdir -p "$OUT"
if ! "$PYTHON" -c "import av" 2>/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1
"$PYTHON" benchmarks/flow_speed.py --device "$DEVICE" --size "$SIZE" --batch 32 --runs 5 2>&1 |
  tee "$OUT/flow.md"
"$PYTHON" -c "from vdenoise.io.encoding import EncodeOptions as E, for_gpu; print(for_gpu(E(), 'mp4')[1])" \
  2>&1 | tee "$OUT/encoder.md"
# shellcheck disable=SC2086  # WEIGHTS is a list of words
"$PYTHON" benchmarks/end_to_end.py ${WEIGHTS:-f2r-small stbn-tiny} --device "$DEVICE" \
  --size "$SIZE" --seconds 3 --runs 2 2>&1 | tee "$OUT/e2e.md"
# F2R with DIS on the CPU instead (VDENOISE_FLOW=dis; the default on a GPU is the torch flow)
VDENOISE_FLOW=dis "$PYTHON" benchmarks/end_to_end.py f2r-small --device "$DEVICE" \
  --size "$SIZE" --seconds 3 --runs 1 2>&1 | tee "$OUT/e2e-dis.md"
"$PYTHON" benchmarks/end_to_end.py f2r-small --device "$DEVICE" \
  --size "$BIG" --seconds 2 --runs 1 2>&1 | tee "$OUT/e2e-big.md"
