# Two commands do all the set-up:  `make demo` (colour the shipped example) and `make test`.
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
BIN := $(VENV)/bin

.PHONY: setup demo test bench clean

setup: $(VENV)/.installed

# Reuse a PyTorch that is already installed (no second multi-GB copy); otherwise install
# the pinned CPU build.
$(VENV)/.installed: pyproject.toml
	@if $(PYTHON) -c "import torch" 2>/dev/null; then \
		echo "using the installed PyTorch"; $(PYTHON) -m venv --system-site-packages $(VENV); \
	else \
		$(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install -q "torch==$(TORCH_VERSION)"; \
	fi
	$(BIN)/python -m pip install -q -e ".[test]"
	@touch $@

demo: setup
	$(BIN)/vidcolor examples/countryside.mp4 --reference examples/references -o out/countryside_color.mp4 --overwrite
	@echo "colour film: out/countryside_color.mp4"

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/memory.py
	$(BIN)/python benchmarks/quality.py
	$(BIN)/python benchmarks/shots.py

clean:
	rm -rf $(VENV) out .pytest_cache
