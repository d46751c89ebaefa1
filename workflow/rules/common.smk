# Config loading, validation and the trial plan; everything rules need at parse time.
import os
import sys

# A clone runs without installing the package; an installed package ships this file inside it.
if os.path.isdir(os.path.join(workflow.basedir, "snaketune")):
    sys.path.insert(0, workflow.basedir)

from snaketune.strategies.jobs import call_args, call_file
from snaketune.workflow import jobs as wj
from snaketune.workflow import steps
from snaketune.workflow import support as ws
from snaketune.workflow import terminal

# Jobs import this package and run this venv's python; HOME: the workflow's folder (the clone, or
# the installed package's copy), found from the package (a `module` user's basedir is their own).
HOME = ws.export_job_environment()
ws.skip_disabled_checksums()
STUDY = ws.load_study(config, workflow)
config.clear()
config.update(STUDY.config)
PLAN = STUDY.plan
OUT = PLAN.out
# A trial file that exists is whole (atomic write): never redo it for an "incomplete" mark.
if ws.is_main_process(workflow):
    wj.release_finished_trials(STUDY)
# trials_per_job > 1 (or auto, measured once): batch id -> trial ids; empty = one job a trial.
BATCHES = wj.batches(STUDY, workflow)
STUDY.batches = BATCHES
# Batched studies track one manifest a batch: a deleted trial file reruns its batch.
if ws.is_main_process(workflow):
    wj.release_broken_batches(STUDY)
# Arrays (.npy), or a table's Arrow files; groups.npy with data.groups.
DATA = multiext(f"{PLAN.data_dir}/", *STUDY.data_files)
# Command studies (your own training script): no data or splits to prepare; the command runs in
# the study's conda env / container when Snakemake is asked for them (workflow/rules/command.smk).
COMMAND = STUDY.command
TRIAL_INPUTS = {} if COMMAND else {"data": DATA, "splits": PLAN.splits_path}
TRIAL_CONDA, TRIAL_CONTAINER = ws.trial_environment(STUDY)


# The command of every job: a registered package call (snaketune/runtime/calls.py) with its
# keyword arguments in params.call (JSON, or @file), run in the warm worker when one runs, else in
# a new Python. {threads} reaches estimators as n_jobs and BLAS/OpenMP pools.
CALL_COMMAND = 'python -I -S "$SNAKETUNE_HOME/scripts/job_client.py" {name} {{params.call:q}} {{threads}} > {{log:q}} 2>&1'


def final_outputs():
    return STUDY.final_outputs()


wildcard_constraints:
    trial=r"[0-9a-f]{12}_[0-9]+",


# The warm worker (snaketune/runtime/worker.py): started during the parse (ws.load_study), adopted
# here on a local run, stopped at the end; it never outlives this run.
WORKER = {}


onstart:
    WORKER["proc"] = ws.start_worker(STUDY, workflow)
    terminal.start_of_run(STUDY, workflow)


onsuccess:
    ws.end_of_run(WORKER.get("proc"))
    # The summary: printing.print_top (top configurations, failures) through the terminal logger.
    terminal.end_of_run(STUDY, ok=True)


onerror:
    ws.end_of_run(WORKER.get("proc"))
    terminal.end_of_run(STUDY, ok=False)
