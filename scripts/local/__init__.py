"""Local servers on loopback that the tests and the scripts both start: ``facelocal serve`` in a subprocess
(:mod:`scripts.local.serve`) and a real ``tritonserver`` over a temporary model repository
(:mod:`scripts.local.tritonserver`).

They live beside the scripts, not in ``service``: they are developer tools (the Triton one needs the
nvidia-pytriton wheel and a Python-backend stand-in for the ONNX Runtime backend) that the wheel and the
images must not ship, and the tests may import the scripts' code while scripts never import ``tests``.
"""
