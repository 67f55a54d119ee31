#!/usr/bin/env bash
# Train the GPU release candidates on one GPU, all at once, then time and validate them.
#
#   OUT=out PACK=path/to/trainpack MINUTES=5.5 scripts/release_gpu.sh
#
# PACK holds train/ and val/ (../shared/data/trainpack). Runs where PyAV is missing (training
# decodes with OpenCV; the bench skips its end-to-end timing and FFmpeg baselines). Checkpoints
# are copied to OUT as they are written, so a run cut short still leaves its latest ones; logs
# and bench reports come back in OUT/logs.tar.
set -u
OUT=${OUT:-out}
PACK=${PACK:-../shared/data/trainpack}
MINUTES=${MINUTES:-5.5}
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
RUN=$(mktemp -d)
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
logs() { (cd "$RUN" && tar -cf "$OUT/logs.tar" ./*.log ./*.json 2>/dev/null); }

# name method preset batch crop lr
CANDIDATES=(
  "f2r-base f2r base 32 128 5e-4"
  "stbn-small stbn small 8 96 3e-4"
  "stbn-medium stbn medium 8 96 3e-4"
)
for candidate in "${CANDIDATES[@]}"; do
  read -r name method preset batch crop lr <<<"$candidate"
  joint=()  # F2R: the last half of stage 2's budget fine-tunes both stages (stop 18: +0.4 dB)
  [ "$method" = f2r ] && joint=(--joint "${JOINT:-0.5}")
  "$PYTHON" -m vdenoise train "$PACK/train" --val "$PACK/val" -o "$RUN/$name.safetensors" \
    --method "$method" --preset "$preset" --batch "$batch" --crop "$crop" --lr "$lr" "${joint[@]}" \
    --noise gaussian:5-55 --eight-bit "${EIGHT_BIT:-0.5}" --minutes "$MINUTES" --device "$DEVICE" \
    >"$RUN/$name.log" 2>&1 &
done
while [ -n "$(jobs -r)" ]; do  # keep the latest checkpoints where they come back from
  sleep 15
  for f in "$RUN"/*.safetensors; do
    case $f in *.resume.safetensors) ;; *) cp "$f" "$OUT/" 2>/dev/null ;; esac
  done
  logs
done
for candidate in "${CANDIDATES[@]}"; do
  read -r name _ <<<"$candidate"
  cp "$RUN/$name.safetensors" "$OUT/"
done

# Model-only speed, the GPU to itself (bf16).
"$PYTHON" benchmarks/models.py --device "$DEVICE" --presets base,small,medium \
  --sizes "${SIZES:-640x480,960x540}" --seconds 2 >"$OUT/speed.md" 2>&1

# The papers' protocol on the held-out sequences, first 25 frames, sigma 10..50.
for candidate in "${CANDIDATES[@]}"; do
  read -r name _ <<<"$candidate"
  "$PYTHON" -m vdenoise bench --dataset folder --root "$PACK/val" --weights "$OUT/$name.safetensors" \
    --baselines noisy --frames 25 --no-end-to-end --device "$DEVICE" --quiet --json \
    >"$RUN/$name.bench.json" 2>>"$RUN/$name.log" &
done
wait
logs
