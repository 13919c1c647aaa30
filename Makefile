# The README's two commands: `make serve` and `make test`. Both set up .venv first if needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WEIGHTS ?= ../shared/data/weights/mobilenet0.25_Final.pth
PRESET ?=
MODEL ?= artifacts/model.onnx
EXPORT_ARGS := --weights $(WEIGHTS)$(if $(PRESET), --preset $(PRESET))
PYTEST_ARGS ?=

.PHONY: setup serve test test-slow screenshot model clean FORCE

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[torch,eval,dev]"
	$(BIN)/pip install --quiet --no-deps "nvidia-pytriton==0.7.0"  # tritonserver for tests/triton; see pyproject.toml
	touch $@

# Export the ONNX model the service runs (torch is needed for this step only). It is redone when the weights
# file changes or when WEIGHTS or PRESET name another one (the stamp holds the export's arguments).
model: $(MODEL)
$(MODEL): $(WEIGHTS) $(MODEL).args $(VENV)/.installed
	$(BIN)/facelocal export onnx $(EXPORT_ARGS) --out $(MODEL)

$(MODEL).args: FORCE
	@mkdir -p $(dir $@)
	@echo '$(EXPORT_ARGS)' | cmp -s - $@ || echo '$(EXPORT_ARGS)' > $@

serve: $(MODEL)
	$(BIN)/facelocal serve --model-path $(MODEL)

test: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The README's picture of the try-it page, from the browser test that checks it.
screenshot: $(VENV)/.installed
	FACELOCAL_UPDATE_SCREENSHOT=1 $(BIN)/python -m pytest tests/web -k selfie_group $(PYTEST_ARGS)

test-slow: $(VENV)/.installed
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) artifacts .pytest_cache
