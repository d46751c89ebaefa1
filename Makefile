# Two commands do all set-up on a fresh machine:  `make run`  and  `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CORES  ?= 2
STAMP  := $(VENV)/.installed

.PHONY: install run test test-fast lint format report status bench clean

$(STAMP): requirements.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt -c constraints.txt
	touch $(STAMP)

install: $(STAMP)

## Run the default study (config.yaml) on CORES cores.
run: install
	$(BIN)/snakemake --cores $(CORES)

## The whole test suite, slow end-to-end tests included (what CI runs).
test: install
	$(BIN)/python -m pytest -ra

## Unit tests only.
test-fast: install
	$(BIN)/python -m pytest -ra -m "not slow"

lint: install
	$(BIN)/ruff check snaketune scripts tests bench
	$(BIN)/ruff format --check snaketune scripts tests bench
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint --cores 1
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format snaketune scripts tests bench
	$(BIN)/snakefmt Snakefile workflow/rules

## Self-contained HTML report of a study, one file per study: results/<study>/report.html.
## make report [CONFIG=examples/knn-iris.yaml]   (runs what is not done yet, then writes the report)
CONFIG ?= config.yaml
report: install
	$(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG)
	$(BIN)/snakemake --cores 1 --configfile $(CONFIG) \
		--report "$$($(BIN)/python -c 'import sys; from snaketune.results.report import report_path; print(report_path(sys.argv[1]))' $(CONFIG))"

## Progress of a running (or finished) study: make status [STUDY=name]
status: install
	$(BIN)/python -m snaketune status $(if $(STUDY),--study $(STUDY))

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf results .snakemake
