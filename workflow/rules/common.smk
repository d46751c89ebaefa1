# Config loading, validation and the trial plan; everything rules need at parse time.
import json
import sys

sys.path.insert(0, workflow.basedir)

from snaketune.workflow import support as ws

# Jobs import the package from the workflow folder and run this venv's python.
ws.export_job_environment(workflow.basedir)
STUDY = ws.load_study(config, workflow)
config.clear()
config.update(STUDY.config)
PLAN = STUDY.plan
OUT = PLAN.out
# A trial file that exists is whole (atomic write): never redo it for an "incomplete" mark.
if ws.is_main_process(workflow):
    ws.release_finished_trials(STUDY)
# trials_per_job > 1 (or auto, measured once): batch id -> trial ids; empty = one job a trial.
BATCHES = ws.batches(STUDY, workflow)
# Hyperband / successive halving build their own DAG of rungs (workflow/rules/hyperband.smk).
ADAPTIVE = STUDY.adaptive


# A job that runs a registered package call (snaketune/runtime/calls.py): in the warm worker when one
# runs, else in a new Python. Rules pass the call's keyword arguments as JSON in params.call.
CALL_COMMAND = 'python -I -S "$SNAKETUNE_HOME/scripts/trial_client.py" --call {name} {{params.call:q}} > {{log:q}} 2>&1'


def call_args(**kwargs):
    """params.call for CALL_COMMAND: keyword arguments as JSON."""
    return json.dumps(kwargs, sort_keys=True, default=str)


def final_outputs():
    return STUDY.final_outputs()


def trial_spec(wildcards):
    return ws.spec_json(PLAN, wildcards.trial)


wildcard_constraints:
    trial=r"[0-9a-f]{12}_[0-9]+",


# The warm worker (snaketune/runtime/worker.py) lives exactly as long as this local run.
WORKER = {}


onstart:
    WORKER["proc"] = ws.start_worker(STUDY, workflow)


onsuccess:
    ws.stop_worker(WORKER.get("proc"))
    ws.print_top(STUDY)


onerror:
    ws.stop_worker(WORKER.get("proc"))
