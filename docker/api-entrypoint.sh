#!/bin/sh
# API container entry point.
#   serve                      run the service (settings from FACELOCAL_* variables)
#   install-model-repository DIR   copy the compact ONNX and FaceMesh ONNX into a mounted Triton model repository
#                                  (compose's model-init step; skipped when it is already there)
set -eu
case "${1:-serve}" in
  serve)
    shift || true
    exec facelocal serve "$@"
    ;;
  install-model-repository)
    repository="${2:?usage: install-model-repository DIR}"
    for model in retinaface facemesh; do
      target="$repository/$model/1/model.onnx"
      if [ -f "$target" ]; then
        echo "model-init: $target exists"
      else
        mkdir -p "$(dirname "$target")"
        cp "/opt/facelocal/model_repository/$model/1/model.onnx" "$target"
        echo "model-init: wrote $target"
      fi
    done
    ;;
  *)
    exec "$@"
    ;;
esac
