# `make run`: set up and run the pipeline (dvc repro) on the embedded default dataset.
# `make test`: set up and run the whole test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test pipeline clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	PATH="$(BIN):$$PATH" dvc repro

# The same chain as one Prefect flow run (what a deployment or schedule runs).
pipeline: $(STAMP)
	PATH="$(BIN):$$PATH" python -m flows.pipeline

test: $(STAMP)
	PATH="$(BIN):$$PATH" python -m pytest

clean:
	rm -rf data/prepared models reports
