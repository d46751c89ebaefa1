# The one trial rule of every strategy: its jobs come from the study's strategy, then nested CV's
# inner trials (snaketune/workflow/jobs.py, snaketune/strategies/jobs.py). When every unit (a trial,
# a Hyperband slot, one fold of an Optuna round) is its own job, a strategy gives one pattern job:
# one rule whose wildcards name the unit (trial, slot, optuna_trial, nested_trial), not a rule per
# trial. Batched (trials_per_job), one rule per batch (trials_<batch>, slots_b<b>_r<i>_s<j>,
# optuna_trials_r<r>_<k>_<f>, nested_trials_<o>_<batch>). On a cluster the group is "trials" (or
# "trials-r<round>", which takes its settings), so --group-components trials=N packs trials.
TRIAL_JOBS = wj.trial_jobs(STUDY, workflow, TRIAL_INPUTS)


for _job in TRIAL_JOBS:

    rule:
        name:
            _job.name
        input:
            unpack(_job.inputs),
        output:
            **_job.outputs,
        log:
            _job.log,
        priority: _job.priority
        group:
            _job.group
        conda:
            TRIAL_CONDA
        container:
            TRIAL_CONTAINER
        threads: _job.threads or config["resources"]["threads"]
        resources:
            mem_mb=config["resources"]["mem_mb"],
            runtime=config["resources"]["runtime"],
        params:
            call=_job.call,
        shell:
            CALL_COMMAND.format(name="trials")
