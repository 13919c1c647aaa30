#!/bin/sh
# Builds model_repository/retinaface_trt/1/model.plan from retinaface/1/model.onnx and facemesh_trt/1/model.plan
# from facemesh/1/model.onnx on first start, and again whenever the GPU differs from the one a plan was built for
# (plans are per GPU model). Arguments go to build_trt_engine.py: `--dry-run` checks the inputs and prints the builds.
set -eu
repository="${MODEL_REPOSITORY:-/models}"
case " $* " in
  # The dry run checks the ONNX inputs against their configs and needs no GPU (nor TensorRT).
  *" --dry-run "*) dry_run=1; gpu="(dry run)" ;;
  *) dry_run=0; gpu="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)" ;;
esac
for model in retinaface facemesh; do
  plan="$repository/${model}_trt/1/model.plan"
  if [ -f "$plan" ] && [ "$(cat "$plan.gpu" 2>/dev/null || true)" = "$gpu" ]; then
    echo "trt-build: $plan already built for $gpu"
    continue
  fi
  python3 /app/scripts/build_trt_engine.py --force \
    --onnx "$repository/$model/1/model.onnx" \
    --config "$repository/${model}_trt/config.pbtxt" \
    --out "$plan" "$@"
  [ "$dry_run" = 1 ] || echo "$gpu" > "$plan.gpu"
done
