# Quick start: `make run` (creates .venv, installs pinned deps, runs the demo), `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CORES  ?= all
PIP    := $(BIN)/python -m pip install -q --disable-pip-version-check
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: venv venv-dev run dryrun test test-unit test-workflow test-spark test-slurm lint format \
        report bench data-production clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.core-installed: requirements.txt constraints.txt | $(BIN)/python
	$(PIP) -r requirements.txt -c constraints.txt
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt requirements-spark.txt $(VENV)/.core-installed
	$(PIP) -r requirements-dev.txt -r requirements-spark.txt -c constraints.txt
	touch $@

venv: $(VENV)/.core-installed        ## core runtime only (no Spark, no test tools)

venv-dev: $(VENV)/.dev-installed     ## + test/lint tools and the optional Spark extra

run: venv                            ## the main job on the bundled demo data
	$(BIN)/snakemake --cores $(CORES)

dryrun: venv
	$(BIN)/snakemake --cores $(CORES) -n

lint: venv-dev                       ## ruff, snakefmt, snakemake --lint
	$(BIN)/ruff check scripts tests
	$(BIN)/ruff format --check scripts tests
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/snakemake --lint --cores 1

format: venv-dev
	$(BIN)/ruff format scripts tests
	$(BIN)/ruff check --fix scripts tests
	$(BIN)/snakefmt Snakefile rules

test-unit: venv-dev
	$(BIN)/python -m pytest -q -m "not integration" tests

test-workflow: venv-dev
	$(BIN)/python -m pytest -q -m integration tests

test: venv-dev lint                  ## everything CI runs
	$(BIN)/python -m pytest -q tests

clean:
	rm -rf results/* logs benchmarks .snakemake
	touch results/.gitkeep
