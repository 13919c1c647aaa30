"""Modules generated from proto/facelocal/v1/facelocal.proto by scripts/gen_proto.sh; do not edit by hand."""
