# Quick start: `make run` (creates .venv, installs pinned deps, runs the demo), `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CORES  ?= all
PIP    := $(BIN)/python -m pip install -q --disable-pip-version-check
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: venv venv-dev run dryrun test test-unit test-workflow test-spark test-slurm lint format \
        report predict docs bench bench-etl bench-cv bench-scale bench-stats bench-small bench-tuning \
        data-production clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.core-installed: requirements.txt constraints.txt pyproject.toml | $(BIN)/python
	$(PIP) -r requirements.txt -c constraints.txt
	$(PIP) --no-deps -e .              # the package, editable: run_pipeline, survival-workflow
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt requirements-spark.txt requirements-dask.txt $(VENV)/.core-installed
	$(PIP) -r requirements-dev.txt -r requirements-spark.txt -r requirements-dask.txt -c constraints.txt
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

report: venv                         ## run the workflow, then the HTML report -> results/report.html
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html

predict: venv                        ## score data/new/*.{csv,parquet} (or PREDICT_INPUT=file.csv)
	$(BIN)/snakemake --cores $(CORES) predict $(if $(PREDICT_INPUT),--config predict_input=$(PREDICT_INPUT))

docs: venv                           ## regenerate config/README.md from config/schema.yaml
	PYTHONPATH=scripts $(BIN)/python -m survival_framework.configdoc config/schema.yaml config/README.md

test-unit: venv-dev
	$(BIN)/python -m pytest -q -m "not integration" tests

test-workflow: venv-dev
	$(BIN)/python -m pytest -q -m integration tests

test-spark: venv-dev                 ## Spark ETL only: engine choice, pandas parity, real standalone cluster
	$(BIN)/python -m pytest -q tests/test_engine.py tests/test_spark_etl.py

test-slurm: venv-dev                 ## the Slurm profile on a real one-node Slurm (root; installs slurm-wlm)
	bash tests/cluster/test_slurm.sh

test: venv-dev lint                  ## everything CI runs
	$(BIN)/python -m pytest -q tests

# ETL benchmark: pandas vs Spark local[2] vs a Dask LocalCluster(2) (BENCH_ETL_ENGINES),
# wall time and peak memory, medians of BENCH_ETL_REPEATS runs, engines alternating
# (~40 min on 2 cores) -> results/bench/etl.{csv,md}
BENCH_ETL_ROWS ?= 1000000 10000000
BENCH_ETL_REPEATS ?= 3
BENCH_ETL_ENGINES ?= pandas spark dask
bench-etl: venv-dev
	$(BIN)/snakemake --cores 1 $(foreach n,$(BENCH_ETL_ROWS),resources/synthetic/survival_$(n).parquet)
	$(BIN)/python scripts/bench/etl_bench.py --rows $(BENCH_ETL_ROWS) --repeats $(BENCH_ETL_REPEATS) \
	  --engines $(BENCH_ETL_ENGINES)

# CV benchmark at production scale (~1 h on 2 cores): naive baseline vs workflow --cores 1/2,
# accuracy of the fast defaults, scaling 10K..1M rows -> results/bench/*.csv, bench.png
bench-cv: venv-dev data-production
	$(BIN)/python scripts/bench/bench_cv.py

# Scale benchmark (~2-3 h on 2 cores): everything `rule all` makes at each size, --cores 2,
# then the Spark ETL at 10M -> docs/bench/scale.csv, scale_jobs.csv, scale_memory.csv
BENCH_SCALE_ROWS ?= 287000 1000000 10000000
BENCH_SCALE_SPARK_ROWS ?= 10000000
bench-scale: venv-dev
	$(BIN)/python scripts/bench/bench_scale.py --rows $(BENCH_SCALE_ROWS) --spark-rows $(BENCH_SCALE_SPARK_ROWS)

# Cost of the km reference and the calibration metrics (~12 min on 2 cores): the code before
# them against now at 287K rows, alternating, --cores 2 -> docs/bench/stats_cost.csv
bench-stats: venv-dev data-production
	$(BIN)/python scripts/bench/bench_stats_cost.py

# Small tables (~15 min, 2 cores): workflow vs plain loop, job overhead -> docs/bench/small.csv
bench-small: venv-dev
	$(BIN)/python scripts/bench/bench_small.py

# Nested tuning (~20 min per pair, 2 cores): config/tuned.yaml vs untuned at 287K rows, its
# cost and the outer metrics' gain -> docs/bench/tuning*.csv, tuning.md
BENCH_TUNING_REPEATS ?= 2
bench-tuning: venv-dev data-production
	$(BIN)/python scripts/bench/bench_tuning.py --repeats $(BENCH_TUNING_REPEATS)

bench: bench-etl bench-cv bench-scale  ## long benchmarks (not part of make test)

data-production: venv                ## the 287,000-row synthetic production table
	$(BIN)/snakemake --cores 1 resources/synthetic/survival_287000.parquet

clean:
	rm -rf results/* logs benchmarks .snakemake
	touch results/.gitkeep
