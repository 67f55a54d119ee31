#!/usr/bin/env bash
# End-to-end and batch timings on a GPU machine, in a call apart from training (the PyAV wheel
# and the training pack do not fit in one 64 MiB carry). Carry .whl holding the PyAV wheel
# (and any checkpoints to time, e.g. untrained ones of the GPU presets: speed does not depend
# on the weights' values):
#
#   OUT=out WEIGHTS=".whl/f2r-base.safetensors weights/f2r-small.safetensors" scripts/gpu_timing.sh
#
# (DEVICE=cpu SIZE=96x64 tries it out on a CPU.)
#
# On an H200 (2026-11-28) the first part ran in ~150 s; the batch part did not fit in the 200 s left,
# so it is smaller here (4 clips of 24 frames).
set -u
OUT=${OUT:-out}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
if ! "$PYTHON" -c "import av" 2>/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1
# shellcheck disable=SC2086  # WEIGHTS is a list of words
"$PYTHON" benchmarks/end_to_end.py ${WEIGHTS:-f2r-small} --device "${DEVICE:-cuda}" --size "${SIZE:-960x540}" \
  --seconds 3 --runs 2 2>&1 | tee "$OUT/e2e.md"
"$PYTHON" benchmarks/batch.py --device "${DEVICE:-cuda}" --size "${SIZE:-960x540}" --frames 24 --clips 4 \
  --jobs 2,4 --no-ray 2>&1 | tee "$OUT/batch.md"
