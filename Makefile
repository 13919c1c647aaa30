# The README's two commands: `make serve` and `make test`. Both set up .venv first if needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WEIGHTS ?= ../shared/data/weights/mobilenet0.25_Final.pth
PRESET ?=
MODEL ?= artifacts/model.onnx
MODEL_INT8 ?= artifacts/model-int8.onnx
EXPORT_ARGS := --weights $(WEIGHTS)$(if $(PRESET), --config $(PRESET))
PYTEST_ARGS ?=

.PHONY: setup serve test test-slow model model-int8 clean FORCE

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[torch,eval,int8,peers,dev]"
	$(BIN)/pip install --quiet --no-deps "nvidia-pytriton==0.7.0"  # tritonserver for tests/triton; see pyproject.toml
	touch $@

# Export the ONNX model the service runs (torch is needed for this step only). It is redone when the weights
# file changes or when WEIGHTS or PRESET name another one (the stamp holds the export's arguments).
model: $(MODEL)
$(MODEL): $(WEIGHTS) $(MODEL).args $(VENV)/.installed
	$(BIN)/facelocal export onnx $(EXPORT_ARGS) --out $(MODEL)

# The int8 file for FACELOCAL_PRECISION=int8 (not the default: see README, "Speed"); calibrated on the
# 300-W Helen test faces and the shared photos, never on evaluation images.
model-int8: $(MODEL_INT8)
$(MODEL_INT8): $(WEIGHTS) $(MODEL).args $(VENV)/.installed
	$(BIN)/facelocal export int8 $(EXPORT_ARGS) --out $(MODEL_INT8)

$(MODEL).args: FORCE
	@mkdir -p $(dir $@)
	@echo '$(EXPORT_ARGS)' | cmp -s - $@ || echo '$(EXPORT_ARGS)' > $@

serve: $(MODEL)
	$(BIN)/facelocal serve --model-path $(MODEL)

test: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: $(VENV)/.installed
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) artifacts .pytest_cache
