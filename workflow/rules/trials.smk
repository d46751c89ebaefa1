# Grid and random search: one configuration on one fold per trial, one JSON file each; a job runs
# one trial, or a batch of them with trials_per_job (snaketune/runtime/batching.py).


if not BATCHES:

    rule trial:
        input:
            **TRIAL_INPUTS,
        output:
            f"{OUT}/trials/{{trial}}.json",
        log:
            f"{OUT}/logs/trials/{{trial}}.log",
        # On a cluster, --group-components trials=N (see the slurm profile) submits N trials per job.
        group:
            "trials"
        conda:
            TRIAL_CONDA
        container:
            TRIAL_CONTAINER
        threads: config["resources"]["threads"]
        resources:
            mem_mb=config["resources"]["mem_mb"],
            runtime=config["resources"]["runtime"],
        params:
            # The whole trial definition: what the content hash in the file name stands for.
            call=trial_args,
        shell:
            CALL_COMMAND.format(name="trials")

else:
    # trials_per_job > 1: one rule per batch. Its output is the batch's manifest, written once
    # every trial of the batch has its file (Snakemake tracks batches, not 10,000 trial files).
    for _batch in BATCHES:

        rule:
            name:
                f"trials_{_batch}"
            input:
                **TRIAL_INPUTS,
            output:
                STUDY.batch_manifest(_batch),
            log:
                f"{OUT}/logs/batches/{_batch}.log",
            group:
                "trials"
            conda:
                TRIAL_CONDA
            container:
                TRIAL_CONTAINER
            threads: config["resources"]["threads"]
            resources:
                mem_mb=config["resources"]["mem_mb"],
                runtime=config["resources"]["runtime"],
            params:
                # Derived (a function of output): Snakemake's params check skips it, so a batch
                # that loses members is not rerun; a new member reruns it (release_broken_batches).
                call=lambda wc, output, batch=_batch: ws.batch_args(STUDY, batch),
            shell:
                CALL_COMMAND.format(name="trials")
