#!/usr/bin/env bash
# Train the GPU release candidates on one GPU, all at once, then time and validate them.
#
#   OUT=out PACK=path/to/trainpack MINUTES=5 scripts/release_gpu.sh
#
# PACK holds train/ and val/ (../shared/data/trainpack). Runs where PyAV is missing (training
# decodes with OpenCV; the bench skips its end-to-end timing and FFmpeg baselines). New models
# of the GPU presets train beside the CPU releases trained on from their weights. Checkpoints
# are copied to OUT as they are written, so a run cut short still leaves its latest ones; logs
# and bench reports come back in OUT/logs.tar. On 2026-11-28 (MINUTES=4.5, four runs on one H200 and
# its 16 cores): the steps were paced by the optical flow on the CPU (f2r-base 555 steps,
# stbn-small 359), and the whole call took over 520 s; time end to end apart
# (scripts/gpu_timing.sh). ONLY="f2r-base stbn-small" trains fewer at once.
#
# Since 2026-12-04 no step waits for the flow: every candidate trains with --flow-cache (the
# flows of the training sequences computed once, on the GPU, and kept there with the frames),
# bf16 autocast. F2R trains on clips of up to 3x the footage's motion (frame steps 1,1,2,3, as
# f2r-small 0.11.0 did) and on the torch flow (VDENOISE_FLOW=auto: PyramidFlow on the GPU,
# the flow the GPU default uses since 0.15.0; benched with it too); f2r-small goes on from its
# release with both stages and each window's loss weighed by 1 / sigma, as 0.15.0 was made. STBN trains on the footage's own motion: on the CPU
# clips of up to 3x the motion made stbn-tiny worse (29.56 against 29.89 dB validation after
# 40 min, weights/stbn-tiny.md). GPU utilisation is sampled every 2 s (OUT/gpu.csv) and each
# candidate's steps/s printed from its checkpoint's record (OUT/steps.md).
set -u
OUT=${OUT:-out}
PACK=${PACK:-../shared/data/trainpack}
MINUTES=${MINUTES:-5}
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
RUN=$(mktemp -d)
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
logs() { (cd "$RUN" && tar -cf "$OUT/logs.tar" ./*.log ./*.json 2>/dev/null); }

export VDENOISE_CACHE="$RUN/cache"
export VDENOISE_FLOW=${VDENOISE_FLOW:-auto}
FAST=(--frame-steps 1,1,2,3)
TRAIN=(-m vdenoise train "$PACK/train" --val "$PACK/val" --noise gaussian:5-55
  --minutes "$MINUTES" --device "$DEVICE" --flow-cache)
REFINE=(scripts/retrain_refiner.py --data "$PACK" --batch "${F2R_BATCH:-32}" --crop 128
  --keep-refiner --device "$DEVICE" --flow-cache "${FAST[@]}")
EIGHT=(--eight-bit "${EIGHT_BIT:-0.5}")  # F2R's stage 1 and STBN: half the clips 8-bit
# name: arguments. F2R ends with a joint phase (+0.36 dB at sigma 30 in 15 min on the CPU);
# stage 2 of width >= 24 collapsed at lr 5e-4 (both 2026-11-28), so F2R's rates stay lower.
declare -A CANDIDATES=(
  [f2r-base]="${TRAIN[*]} ${FAST[*]} --method f2r --preset base --batch 32 --crop 128 --lr 2e-4 --joint 0.5 ${EIGHT[*]}"
  [f2r-small]="${REFINE[*]} weights/f2r-small.safetensors --minutes $MINUTES --lr 5e-5 --joint 0.95 --sigma-power 1"
  [stbn-small]="${TRAIN[*]} --method stbn --preset small --batch 8 --crop 96 --lr 5e-4 ${EIGHT[*]}"
  [stbn-tiny]="${TRAIN[*]} --from weights/stbn-tiny.safetensors --batch 8 --crop 96 --lr 2e-4 ${EIGHT[*]}"
)
NAMES=(${ONLY:-f2r-base f2r-small stbn-small stbn-tiny})
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 2 \
  >"$OUT/gpu.csv" 2>/dev/null &
SAMPLER=$!
for name in "${NAMES[@]}"; do
  # shellcheck disable=SC2086  # the arguments are words
  "$PYTHON" ${CANDIDATES[$name]} -o "$RUN/$name.safetensors" >"$RUN/$name.log" 2>&1 &
done
while [ -n "$(jobs -r)" ]; do  # keep the latest checkpoints where they come back from
  sleep 15
  for f in "$RUN"/*.safetensors; do
    case $f in *.resume.safetensors) ;; *) cp "$f" "$OUT/" 2>/dev/null ;; esac
  done
  logs
done
kill "$SAMPLER" 2>/dev/null
for name in "${NAMES[@]}"; do cp "$RUN/$name.safetensors" "$OUT/"; done
{
  echo "| candidate | steps | training s | steps/s |"
  echo "|---|---|---|---|"
  for name in "${NAMES[@]}"; do
    "$PYTHON" - "$OUT/$name.safetensors" "$name" <<'PY'
import json, sys
from safetensors import safe_open
record = json.loads(safe_open(sys.argv[1], "pt").metadata()["training"])
steps = sum(p["steps"] for p in record["phases"])
seconds = sum(p["seconds"] for p in record["phases"])
print(f"| {sys.argv[2]} | {steps} | {seconds:.0f} | {steps / max(seconds, 1e-9):.2f} |")
PY
  done
  awk -F', ' 'NR > 1 { u += $2; n++ } END { if (n) printf "\nGPU utilisation: mean %.0f %% over %d samples\n", u / n, n }' "$OUT/gpu.csv"
} | tee "$OUT/steps.md"

# Model-only speed, the GPU to itself (bf16).
"$PYTHON" benchmarks/models.py --device "$DEVICE" --presets base,small,tiny \
  --sizes "${SIZES:-960x540,640x480}" --seconds 2 >"$OUT/speed.md" 2>&1

# The held-out sequences, first 25 frames, sigma 10..50: the papers' protocol and 8-bit input.
for name in "${NAMES[@]}"; do
  for protocol in awgn 8bit; do
    extra=()
    [ "$protocol" = 8bit ] && extra=(--eight-bit)
    "$PYTHON" -m vdenoise bench --dataset folder --root "$PACK/val" \
      --weights "$OUT/$name.safetensors" --baselines noisy --frames "${FRAMES:-25}" \
      --no-end-to-end --device "$DEVICE" --quiet --json "${extra[@]}" \
      >"$RUN/$name.$protocol.json" 2>>"$RUN/$name.log" &
  done
done
wait
logs
