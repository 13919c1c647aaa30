#!/bin/sh
# Builds model_repository/retinaface_trt/1/model.plan from retinaface/1/model.onnx on first start, and
# again whenever the GPU differs from the one the plan was built for (plans are per GPU model).
set -eu
repository="${MODEL_REPOSITORY:-/models}"
plan="$repository/retinaface_trt/1/model.plan"
gpu="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)"
if [ -f "$plan" ] && [ "$(cat "$plan.gpu" 2>/dev/null || true)" = "$gpu" ]; then
  echo "trt-build: $plan already built for $gpu"
  exit 0
fi
python3 /app/scripts/build_trt_engine.py --force \
  --onnx "$repository/retinaface/1/model.onnx" \
  --config "$repository/retinaface_trt/config.pbtxt" \
  --out "$plan"
echo "$gpu" > "$plan.gpu"
