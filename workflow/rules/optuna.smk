# Model-based search (Optuna's samplers) in rounds on the trial core: round r's ask job tells the
# sampler round r-1's results and asks batch_size configurations; each configuration's folds are
# ordinary trials, named by position (o<round>-<index>_<fold>), that read their configuration from
# the round's ask file at run time (snaketune/evaluation/rounds.py).
ROUNDS = STUDY.strategy.layout
OPTUNA_GROUPS = ws.optuna_groups(STUDY, workflow)
# Trials are grouped per round (group trials-r<round>, with the settings of group "trials").
ws.round_groups(workflow, ROUNDS.n_rounds)
if ws.is_main_process(workflow):
    print(STUDY.strategy.announce(), file=sys.stderr)


wildcard_constraints:
    round=r"\d+",
    index=r"\d+",
    fold=r"\d+",


rule ask:
    input:
        # Round r needs round r-1's asked configurations, its Optuna state and its results.
        unpack(lambda wc: ws.ask_inputs(STUDY, int(wc.round))),
    output:
        ask=f"{OUT}/optuna/round-{{round}}.json",
        state=f"{OUT}/optuna/round-{{round}}.pkl",
    log:
        f"{OUT}/logs/optuna/ask-{{round}}.log",
    conda:
        "../../envs/snaketune.yaml"
    params:
        call=lambda wc: call_args(**ROUNDS.ask_args(int(wc.round))),
    shell:
        CALL_COMMAND.format(name="ask")


# Asking takes well under a second: on a cluster it runs on the submit host.
localrules:
    ask,


if not OPTUNA_GROUPS:

    rule optuna_trial:
        input:
            **TRIAL_INPUTS,
            ask=f"{OUT}/optuna/round-{{round}}.json",
        output:
            f"{OUT}/trials/o{{round}}-{{index}}_{{fold}}.json",
        log:
            f"{OUT}/logs/trials/o{{round}}-{{index}}_{{fold}}.log",
        group:
            lambda wc: f"trials-r{wc.round}"
        conda:
            TRIAL_CONDA
        container:
            TRIAL_CONTAINER
        threads: config["resources"]["threads"]
        resources:
            mem_mb=config["resources"]["mem_mb"],
            runtime=config["resources"]["runtime"],
        params:
            call=lambda wc: ws.optuna_trial_args(
                STUDY, int(wc.round), int(wc.index), int(wc.fold)
            ),
        shell:
            CALL_COMMAND.format(name="trials")

else:
    # trials_per_job > 1 or auto: several trials of one round per job, one file each still.
    for _round, _trials in OPTUNA_GROUPS:

        rule:
            name:
                f"optuna_trials_r{_round}_{_trials[0][0]}_{_trials[0][1]}"
            input:
                **TRIAL_INPUTS,
                ask=ROUNDS.ask_path(_round),
            output:
                [ROUNDS.slot_trials(_round, k)[f] for k, f in _trials],
            log:
                f"{OUT}/logs/trials/o{_round}-{_trials[0][0]}_{_trials[0][1]}-batch.log",
            group:
                f"trials-r{_round}"
            conda:
                TRIAL_CONDA
            container:
                TRIAL_CONTAINER
            threads: config["resources"]["threads"]
            resources:
                mem_mb=config["resources"]["mem_mb"],
                runtime=config["resources"]["runtime"],
            params:
                call=ws.optuna_group_args(STUDY, _round, _trials),
            shell:
                CALL_COMMAND.format(name="trials")
