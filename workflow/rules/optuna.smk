# Model-based search (Optuna's samplers) in rounds on the trial core: round r's ask job tells the
# sampler round r-1's results and asks batch_size configurations; each configuration's folds are
# ordinary trials, named by position (o<round>-<index>_<fold>), that read their configuration from
# the round's ask file at run time (snaketune/evaluation/rounds.py; they run through the trial rule,
# trials.smk).
ROUNDS = STUDY.strategy.layout
# Trials are grouped per round (group trials-r<round>, with the settings of group "trials").
wj.round_groups(workflow, ROUNDS.n_rounds)
if ws.is_main_process(workflow):
    print(STUDY.strategy.announce(), file=sys.stderr)


wildcard_constraints:
    round=r"\d+",
    index=r"\d+",
    fold=r"\d+",


# A local run with trials_per_job: auto asks in each round's trials job instead (trials.smk).
if not STUDY.strategy.asks_in_round_jobs:

    rule ask:
        input:
            # Round r needs round r-1's asked configurations, its Optuna state and its results.
            unpack(lambda wc: STUDY.strategy.ask_inputs(int(wc.round))),
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
