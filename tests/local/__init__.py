"""Local servers on loopback that the tests and the scripts both start: ``facelocal serve`` in a subprocess
(:mod:`tests.local.serve`) and a real ``tritonserver`` over a temporary model repository
(:mod:`tests.local.tritonserver`).

They are test fixtures first, so they live in the tests package, and the suite's fixtures import nothing from
``scripts/``; the benchmark scripts, which run from a checkout as the tests do, import them from here. Not in
``service``: they are developer tools (the Triton one needs the nvidia-pytriton wheel and a Python-backend
stand-in for the ONNX Runtime backend) that the wheel and the images must not ship.
"""
