# Load the data source once and compute the CV splits once; trials only read these files.


rule prepare_data:
    output:
        DATA,
    log:
        f"{OUT}/logs/prepare_data.log",
    conda:
        "../../envs/snaketune.yaml"
    params:
        call=lambda wc, output: call_args(
            data=config["data"], outputs=list(output), **STUDY.prepare_args()
        ),
    shell:
        CALL_COMMAND.format(name="prepare_data")


rule make_splits:
    input:
        y=f"{PLAN.data_dir}/y.npy",
        meta=f"{PLAN.data_dir}/meta.json",
    output:
        PLAN.splits_path,
    log:
        f"{OUT}/logs/make_splits.log",
    conda:
        "../../envs/snaketune.yaml"
    params:
        call=lambda wc, input, output: call_args(
            cv=config["cv"],
            classifier=PLAN.classifier,
            y=input.y,
            outputs=list(output),
        ),
    shell:
        CALL_COMMAND.format(name="make_splits")


# On a cluster these are quick: run them on the submit host, not as SLURM round trips.
localrules:
    prepare_data,
    make_splits,
