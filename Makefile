# The README's two commands: `make serve` and `make test`. Both set up .venv first if needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WEIGHTS ?= ../shared/data/weights/mobilenet0.25_Final.pth
MODEL ?= artifacts/model.onnx
PYTEST_ARGS ?=

.PHONY: setup serve test test-slow model clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[torch,eval,dev]"
	$(BIN)/pip install --quiet --no-deps "nvidia-pytriton==0.7.0"  # tritonserver for tests/triton; see pyproject.toml
	touch $@

# Export the ONNX model the service runs (torch is needed for this step only).
model: $(MODEL)
$(MODEL): $(VENV)/.installed
	$(BIN)/facelocal export onnx --weights $(WEIGHTS) --out $(MODEL)

serve: $(MODEL)
	$(BIN)/facelocal serve --model-path $(MODEL)

test: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: $(VENV)/.installed
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) artifacts .pytest_cache
