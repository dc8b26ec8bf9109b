# Two commands do all the set-up:  `make demo` (colour the shipped example) and `make test`.
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
BIN := $(VENV)/bin

.PHONY: setup demo test wheel-test bench clean

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

# The package as a user gets it: a wheel (weights inside), installed in a fresh virtual
# environment, colouring a photo and a film outside the source tree.
WHEEL_DIR := build/wheel-test
wheel-test: setup
	rm -rf $(WHEEL_DIR) && mkdir -p $(WHEEL_DIR)/work
	$(BIN)/python -m pip wheel -q --no-deps -w $(WHEEL_DIR) .
	@if $(PYTHON) -c "import torch" 2>/dev/null; then \
		$(PYTHON) -m venv --system-site-packages $(WHEEL_DIR)/venv; \
	else \
		$(PYTHON) -m venv $(WHEEL_DIR)/venv && $(WHEEL_DIR)/venv/bin/python -m pip install -q "torch==$(TORCH_VERSION)"; \
	fi
	$(WHEEL_DIR)/venv/bin/python -m pip install -q $(WHEEL_DIR)/vidcolor-*.whl
	cp examples/countryside.mp4 examples/references/countryside.png $(WHEEL_DIR)/work/
	cd $(WHEEL_DIR)/work && ../venv/bin/vidcolor weights verify \
		&& ../venv/bin/vidcolor shots countryside.mp4 --export-keyframes stills -q \
		&& ../venv/bin/vidcolor stills/shot_0000.png --auto -o photo_color.png -q \
		&& ../venv/bin/vidcolor countryside.mp4 --reference countryside.png --model exemplar -o film_color.mp4 -q \
		&& ../venv/bin/python -c "import vidcolor, pathlib; assert pathlib.Path(vidcolor.__file__).is_relative_to(pathlib.Path.cwd().parent / 'venv'); print('wheel:', [m.name for m in vidcolor.list_models() if m.installed])"
	test -s $(WHEEL_DIR)/work/photo_color.png && test -s $(WHEEL_DIR)/work/film_color.mp4
	@echo "the wheel installs, with its weights, and colours a photo and a film"

bench: setup
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/memory.py
	$(BIN)/python benchmarks/quality.py
	$(BIN)/python benchmarks/shots.py

clean:
	rm -rf $(VENV) out .pytest_cache build
