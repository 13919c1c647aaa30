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

.PHONY: setup serve test test-slow test-train lint screenshot model model-int8 model-repository images compose-up compose-down compose-test clean FORCE

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

# With the mesh, return_pose finds MediaPipe's canonical face beside the FaceMesh weights. With the int8 file
# (make model-int8), precision auto times it beside fp32 and bf16 at start-up.
serve: $(MODEL) $(MESH_TARGET)
	$(BIN)/facelocal serve --model-path $(MODEL) $(if $(MESH_TARGET),--mesh-model-path $(MESH_MODEL) --face-geometry-path $(dir $(MESH_WEIGHTS))) $(if $(wildcard $(MODEL_INT8)),--int8-model-path $(MODEL_INT8))

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
	FACELOCAL_UPDATE_SCREENSHOT=1 $(BIN)/python -m pytest tests/web -k landmark_source_pose_quality $(PYTEST_ARGS)

test-slow: $(VENV)/.installed
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

# The trainer learning the shared photos from scratch (5-9 minutes on 2 cores); outside CI, whose 20 minutes
# go to the test suites and the compose deployment.
test-train: $(VENV)/.installed
	$(BIN)/python -m pytest -m train $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) artifacts .pytest_cache

# Docker (README, "Docker"). The API image copies the models exported here (torch stays on the host): the
# detector and FaceMesh for the embedded profile, and Triton's compact graphs (model_repository/'s configs),
# which compose's model-init installs for the cpu and gpu profiles.
TRITON_ONNX := artifacts/model_repository/retinaface/1/model.onnx artifacts/model_repository/facemesh/1/model.onnx
PROFILE ?= embedded
COMPOSE := docker compose --env-file artifacts/compose.env

model-repository: $(TRITON_ONNX)
artifacts/model_repository/retinaface/1/model.onnx: $(WEIGHTS) $(GRAPH_SOURCES) model_repository/retinaface/config.pbtxt $(VENV)/.installed
	$(BIN)/python scripts/prepare_model_repository.py --weights $(WEIGHTS) --out $@
artifacts/model_repository/facemesh/1/model.onnx: $(MESH_WEIGHTS) $(GRAPH_SOURCES) model_repository/facemesh/config.pbtxt $(VENV)/.installed
	$(BIN)/python scripts/prepare_model_repository.py --model facemesh --mesh-weights $(MESH_WEIGHTS) --out $@

# MediaPipe's canonical face for return_pose (facelocal.pose: the .obj and its .pbtxt) and the licence it ships
# under, from beside the FaceMesh weights, for the API image.
FACE_GEOMETRY := $(addprefix artifacts/face_geometry/,$(notdir $(wildcard $(addprefix $(dir $(MESH_WEIGHTS)),*.obj *.pbtxt LICENSE*))))
artifacts/face_geometry/%: $(dir $(MESH_WEIGHTS))%
	mkdir -p $(@D) && cp $< $@

# Installs Docker and the compose plugin when missing, starts dockerd, builds stand-ins for unreachable bases.
images: $(MODEL) $(MESH_MODEL) $(TRITON_ONNX) $(FACE_GEOMETRY)
	scripts/compose/images.sh

compose-up: images
	$(COMPOSE) --profile $(PROFILE) up -d --wait

compose-down:
	scripts/compose/ensure-docker.sh >/dev/null
	$(COMPOSE) --profile '*' down --remove-orphans

# Brings each CPU profile up in turn, drives it from the host through its published ports, and takes it down.
compose-test: images
	$(BIN)/python -m pytest -m compose tests/compose $(PYTEST_ARGS)
