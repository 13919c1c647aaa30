"""facelocal serving: one detection core behind REST (FastAPI) and gRPC front ends.

This package never imports torch: it runs the exported ONNX model in process (OpenVINO by default, or ONNX
Runtime; :mod:`service.backends.inprocess`) or on NVIDIA Triton.
"""
