# Two commands do all set-up on a fresh machine:  `make run`  and  `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CORES  ?= 2
STAMP  := $(VENV)/.installed

.PHONY: install run test test-fast lint format report status bench clean

# Then the package itself, editable in "compat" mode (a .pth naming this folder): the `snaketune`
# command and `python -m snaketune` work from any folder and always run this checkout, and
# Snakemake finds the logger plugin (it lists importable modules; other editable modes hide them).
$(STAMP): requirements.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation --config-settings editable_mode=compat -e .
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
	$(BIN)/ruff check snaketune snakemake_logger_plugin_snaketune scripts tests bench
	$(BIN)/ruff format --check snaketune snakemake_logger_plugin_snaketune scripts tests bench
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint --cores 1
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format snaketune snakemake_logger_plugin_snaketune scripts tests bench
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

## Benchmarks against scikit-learn in the same run (bench/results/); the SLURM row needs
## scripts/slurm-local.sh up (or a cluster) and is skipped with a message otherwise.
bench: install
	$(BIN)/python bench/run.py
	$(BIN)/python bench/bench_session.py
	$(BIN)/python bench/bench_real_table.py
	$(BIN)/python bench/bench_scale.py --configs 2000
	$(BIN)/python bench/bench_search_cv.py
	@if command -v sbatch >/dev/null && scripts/slurm-local.sh status 2>/dev/null | grep -q "slurmctld: running"; then \
		$(BIN)/python bench/bench_slurm.py; else echo "bench: no SLURM cluster up, SLURM row skipped"; fi

clean:
	rm -rf results .snakemake
