# The README's commands. Each creates .venv (Python 3.11) on first use and reinstalls when
# pyproject.toml changes.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: book test bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[book,test]'
	@touch $(STAMP)

## Execute every chapter on lds-mini and build the HTML book into _build/html;
## MODEL=<diffusers folder or hub id> builds it on that model into _build/models/<name>/html (book/gpu.md)
MODEL ?=
book: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m lds.book.runner $(if $(MODEL),--model "$(MODEL)")

## Unit tests, every chapter at CI size, the strict book build and the browser test
test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest

## Benchmarks: JSON + Markdown table in benchmarks/results.*; then the mutation check (benchmarks/mutations.json)
bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) benchmarks/run.py
	HF_HUB_OFFLINE=1 $(PY) tests/mutation_check.py

clean:
	rm -rf _build runs .pytest_cache
