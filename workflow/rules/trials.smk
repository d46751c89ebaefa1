# Trials: one configuration on one fold, one JSON file each. A job hands its trials to the warm
# worker when one runs, else runs them in-process (scripts/trial_client.py).
# Threads reach estimators as n_jobs (snaketune.trial.thread_parameters) and BLAS/OpenMP pools.
TRIAL_COMMAND = (
    "SNAKETUNE_THREADS={threads} OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} "
    'python -I -S "$SNAKETUNE_HOME/scripts/trial_client.py" {params.spec:q} {output:q} > {log:q} 2>&1'
)


if not BATCHES:

    rule trial:
        input:
            data=multiext(f"{PLAN.data_dir}/", "X.npy", "y.npy", "meta.json"),
            splits=PLAN.splits_path,
        output:
            f"{OUT}/trials/{{trial}}.json",
        log:
            f"{OUT}/logs/trials/{{trial}}.log",
        # On a cluster, --group-components trials=N (see the slurm profile) submits N trials per job.
        group:
            "trials"
        conda:
            "../../envs/snaketune.yaml"
        threads: config["resources"]["threads"]
        resources:
            mem_mb=config["resources"]["mem_mb"],
            runtime=config["resources"]["runtime"],
        params:
            # The whole trial definition: what the content hash in the file name stands for.
            spec=trial_spec,
        shell:
            TRIAL_COMMAND

else:
    # trials_per_job > 1: one rule per batch, listing its trials' files as outputs.
    for _batch, _trials in BATCHES.items():

        rule:
            name:
                f"trials_{_batch}"
            input:
                data=multiext(f"{PLAN.data_dir}/", "X.npy", "y.npy", "meta.json"),
                splits=PLAN.splits_path,
            output:
                [PLAN.trial_path(t) for t in _trials],
            log:
                f"{OUT}/logs/batches/{_batch}.log",
            group:
                "trials"
            conda:
                "../../envs/snaketune.yaml"
            threads: config["resources"]["threads"]
            resources:
                mem_mb=config["resources"]["mem_mb"],
                runtime=config["resources"]["runtime"],
            params:
                spec=ws.batch_spec_file(PLAN, _trials),
            shell:
                TRIAL_COMMAND
