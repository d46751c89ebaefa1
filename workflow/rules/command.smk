# Command studies (your own training script, snaketune/evaluation/command.py): trials run through
# trials.smk / adaptive.smk like any other; the refit reruns the best configuration's command on
# all data (command.refit) or writes a refit.json that says it was skipped. There is no model.pkl.


rule refit_command:
    input:
        best=f"{OUT}/best.json",
    output:
        summary=f"{OUT}/refit.json",
    log:
        f"{OUT}/logs/refit.log",
    conda:
        TRIAL_CONDA
    container:
        TRIAL_CONTAINER
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        call=lambda wc: steps.command_refit_args(STUDY),
    shell:
        CALL_COMMAND.format(name="refit_command")


# refit.json of a command study comes from its command, not from the estimator refit.
ruleorder: refit_command > refit
