# Nested cross-validation (config `nested`, snaketune/search/nested.py): outer splits of the training
# rows; per outer fold its inner splits, the whole search as ordinary trials (named with the outer
# fold in their key, in nested/trials/, run by the trial rule in trials.smk), then the inner winner
# refit and scored on the outer fold.
NESTED = STUDY.nested
NESTED_Y = multiext(f"{PLAN.data_dir}/", "y.npy", "meta.json")
if ws.is_main_process(workflow):
    print(NESTED.summary(), file=sys.stderr)


rule nested_outer_splits:
    input:
        NESTED_Y,
    output:
        NESTED.outer_splits_path,
    log:
        f"{OUT}/logs/nested/outer_splits.log",
    conda:
        "../../envs/snaketune.yaml"
    params:
        call=lambda wc, input, output: call_args(
            cv=config["nested"],
            classifier=PLAN.classifier,
            y=input[0],
            outputs=list(output),
        ),
    shell:
        CALL_COMMAND.format(name="make_splits")


for _o, _inner in enumerate(NESTED.inner):

    rule:
        name:
            f"nested_splits_{_o}"
        input:
            y=NESTED_Y,
            outer=NESTED.outer_splits_path,
        output:
            _inner.splits_path,
        log:
            f"{OUT}/logs/nested/splits_{_o}.log",
        localrule: True
        conda:
            "../../envs/snaketune.yaml"
        params:
            call=call_args(
                cv=config["cv"],
                classifier=PLAN.classifier,
                y=f"{PLAN.data_dir}/y.npy",
                outer_splits=NESTED.outer_splits_path,
                outer_fold=_o,
                outputs=[_inner.splits_path],
            ),
        shell:
            CALL_COMMAND.format(name="nested_splits")

    rule:
        name:
            f"nested_outer_{_o}"
        input:
            trials=_inner.trial_paths,
            data=DATA,
            outer=NESTED.outer_splits_path,
        output:
            NESTED.outer_result_path(_o),
        log:
            f"{OUT}/logs/nested/outer_{_o}.log",
        conda:
            "../../envs/snaketune.yaml"
        threads: config["resources"]["threads"]
        resources:
            mem_mb=config["resources"]["mem_mb"],
            runtime=config["resources"]["runtime"],
        params:
            call=steps.nested_outer_args(STUDY, _o),
        shell:
            CALL_COMMAND.format(name="nested_outer")


rule nested_summary:
    input:
        outer=NESTED.outer_result_paths,
        best=f"{OUT}/best.json",
    output:
        summary=f"{OUT}/nested.json",
        plot=report(
            f"{OUT}/plots/nested.png",
            caption="../report/plot_nested.rst",
            category="Nested CV",
            labels={
                "plot": "outer score against inner best",
                "metric": config["refit"],
            },
        ),
        page=report(
            f"{OUT}/report/nested.html",
            caption="../report/nested.rst",
            category="Nested CV",
            labels={"page": "how good is the tuned model"},
        ),
    log:
        f"{OUT}/logs/nested/summary.log",
    conda:
        "../../envs/snaketune.yaml"
    params:
        call=lambda wc, input, output: call_args(
            outer=list(input.outer),
            best=input.best,
            config={
                k: config[k] for k in ("study", "scoring", "refit", "nested", "cv")
            },
            n_trials=NESTED.n_trials,
            outputs=list(output),
        ),
    shell:
        CALL_COMMAND.format(name="nested_summary")


localrules:
    nested_outer_splits,
    nested_summary,
