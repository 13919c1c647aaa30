#!/bin/sh
# API container entry point.
#   serve                      run the service (settings from FACELOCAL_* variables)
#   install-model-repository DIR   copy the compact ONNX and FaceMesh ONNX into a mounted Triton model repository
#                                  (compose's model-init step; a file already there is replaced only when
#                                  it differs, so that a rebuilt image brings its models)
set -eu
case "${1:-serve}" in
  serve)
    shift || true
    exec facelocal serve "$@"
    ;;
  install-model-repository)
    repository="${2:?usage: install-model-repository DIR}"
    for model in retinaface facemesh; do
      source="/opt/facelocal/model_repository/$model/1/model.onnx"
      target="$repository/$model/1/model.onnx"
      if cmp -s "$source" "$target"; then
        echo "model-init: $target is up to date"
      else
        mkdir -p "$(dirname "$target")"
        cp "$source" "$target"
        echo "model-init: wrote $target"
      fi
    done
    ;;
  *)
    exec "$@"
    ;;
esac
