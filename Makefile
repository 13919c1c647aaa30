# The README's two commands: `make serve` and `make test`. Both set up .venv first if needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WEIGHTS ?= ../shared/data/weights/mobilenet0.25_Final.pth
MODEL ?= artifacts/model.onnx
# FaceMesh for return_mesh: exported when the .tflite is there; the service finds artifacts/facemesh.onnx itself.
MESH_WEIGHTS ?= ../shared/data/weights/facemesh/face_landmark.tflite
MESH_MODEL ?= artifacts/facemesh.onnx
MESH_TARGET := $(if $(wildcard $(MESH_WEIGHTS)),$(MESH_MODEL))
PYTEST_ARGS ?=

.PHONY: setup serve test test-slow model clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[torch,eval,dev]"
	$(BIN)/pip install --quiet --no-deps "nvidia-pytriton==0.7.0"  # tritonserver for tests/triton; see pyproject.toml
	touch $@

# Export the ONNX models the service runs (torch is needed for this step only): the detector, and FaceMesh
# (return_mesh) when $(MESH_WEIGHTS) exists; without it the service answers return_mesh with 422.
model: $(MODEL) $(MESH_TARGET)
$(MODEL): $(VENV)/.installed
	$(BIN)/facelocal export onnx --weights $(WEIGHTS) --out $(MODEL)

$(MESH_MODEL): $(VENV)/.installed $(MESH_WEIGHTS)
	$(BIN)/facelocal export onnx --mesh --mesh-weights $(MESH_WEIGHTS) --out $(MESH_MODEL)

serve: $(MODEL) $(MESH_TARGET)
	$(BIN)/facelocal serve --model-path $(MODEL) $(if $(MESH_TARGET),--mesh-model-path $(MESH_MODEL))

test: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: $(VENV)/.installed
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) artifacts .pytest_cache
