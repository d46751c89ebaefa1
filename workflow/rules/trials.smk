# One job per trial (one configuration on one fold), writing one JSON file.
# The job hands the trial to the warm worker when one runs, else runs it in-process.


rule trial:
    input:
        data=multiext(f"{PLAN.data_dir}/", "X.npy", "y.npy", "meta.json"),
        splits=PLAN.splits_path,
    output:
        f"{OUT}/trials/{{trial}}.json",
    params:
        # The whole trial definition: what the content hash in the file name stands for.
        spec=trial_spec,
    log:
        f"{OUT}/logs/trials/{{trial}}.log",
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=config["resources"]["runtime"],
    threads: config["resources"]["threads"]
    # On a cluster, --group-components trials=N (see the slurm profile) submits N trials per job.
    group:
        "trials"
    conda:
        "../../envs/snaketune.yaml"
    shell:
        "python -I -S \"$SNAKETUNE_HOME/scripts/trial_client.py\" {params.spec:q} {output:q} > {log:q} 2>&1"
