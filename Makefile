# The README's two commands: `make serve` and `make test`. Both set up .venv first if needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WEIGHTS ?= ../shared/data/weights/mobilenet0.25_Final.pth
# The shared data (calibration images for model-int8); the library never guesses it from the working directory.
DATA ?= ../shared/data
PRESET ?=
MODEL ?= artifacts/model.onnx
MODEL_INT8 ?= artifacts/model-int8.onnx
EXPORT_ARGS := --weights $(WEIGHTS)$(if $(PRESET), --preset $(PRESET))
# FaceMesh for return_mesh: exported when the .tflite is there; the service finds artifacts/facemesh.onnx itself.
MESH_WEIGHTS ?= ../shared/data/weights/facemesh/face_landmark.tflite
MESH_MODEL ?= artifacts/facemesh.onnx
MESH_TARGET := $(if $(wildcard $(MESH_WEIGHTS)),$(MESH_MODEL))
PYTEST_ARGS ?=

.PHONY: setup serve test test-slow lint screenshot model model-int8 clean FORCE

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[torch,eval,int8,dev]"
	$(BIN)/pip install --quiet --no-deps "nvidia-pytriton==0.7.0"  # tritonserver for tests/triton; see pyproject.toml
	touch $@

# Export the ONNX models the service runs (torch is needed for this step only): the detector, redone when the
# weights file changes or when WEIGHTS or PRESET name another one (the stamp holds the export's arguments), and
# FaceMesh (return_mesh) when $(MESH_WEIGHTS) exists; without it the service answers return_mesh with 422.
model: $(MODEL) $(MESH_TARGET)
# The graph's code is a prerequisite too: a change to the network or the contract re-exports.
GRAPH_SOURCES := facelocal/export.py facelocal/contract.py $(wildcard facelocal/models/*.py)
$(MODEL): $(WEIGHTS) $(MODEL).args $(GRAPH_SOURCES) $(VENV)/.installed
	$(BIN)/facelocal export onnx $(EXPORT_ARGS) --out $(MODEL)

# The int8 file for FACELOCAL_PRECISION=int8 (not the default: see README, "Speed"); calibrated on the
# 300-W Helen test faces and the shared photos, never on evaluation images.
model-int8: $(MODEL_INT8)
$(MODEL_INT8): $(WEIGHTS) $(MODEL).args $(VENV)/.installed
	FACELOCAL_DATA=$(abspath $(DATA)) $(BIN)/facelocal export int8 $(EXPORT_ARGS) --out $(MODEL_INT8)

$(MODEL).args: FORCE
	@mkdir -p $(dir $@)
	@echo '$(EXPORT_ARGS)' | cmp -s - $@ || echo '$(EXPORT_ARGS)' > $@

$(MESH_MODEL): $(MESH_WEIGHTS) $(GRAPH_SOURCES) $(VENV)/.installed
	$(BIN)/facelocal export onnx --mesh --mesh-weights $(MESH_WEIGHTS) --out $(MESH_MODEL)

# With the mesh, return_pose finds MediaPipe's canonical face beside the FaceMesh weights.
serve: $(MODEL) $(MESH_TARGET)
	$(BIN)/facelocal serve --model-path $(MODEL) $(if $(MESH_TARGET),--mesh-model-path $(MESH_MODEL) --face-geometry-path $(dir $(MESH_WEIGHTS)))

# Style and correctness checks the tests do not make: ruff's lint rules and its formatting (pyproject.toml).
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The browser tests drive Debian's chromium through Playwright (which downloads no browser here): installed on
# first use, as root or through sudo.
CHROMIUM ?= /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
$(CHROMIUM):
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

test: $(VENV)/.installed $(CHROMIUM)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The README's picture of the try-it page, from the browser test that checks it.
screenshot: $(VENV)/.installed $(CHROMIUM)
	FACELOCAL_UPDATE_SCREENSHOT=1 $(BIN)/python -m pytest tests/web -k selfie_group $(PYTEST_ARGS)

test-slow: $(VENV)/.installed
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) artifacts .pytest_cache
