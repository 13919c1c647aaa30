"""facelocal serving: one detection core behind REST (FastAPI) and gRPC front ends.

This package never imports torch: it runs the exported ONNX model (ONNX Runtime in process, or Triton).
"""
