# Hyperband / successive halving as a static DAG of slots on the trial core: slot j of rung i of
# bracket b is one job of ordinary trials, one per fold (snaketune/evaluation/adaptive.py; its jobs
# run through the trial rule, trials.smk); in rung i > 0 it trains the j-th survivor of rung i-1,
# read from the promotion file this rule file's promote step writes.
SLOTS = STUDY.strategy.layout
if ws.is_main_process(workflow):
    print(SLOTS.summary(), file=sys.stderr)


wildcard_constraints:
    bracket=r"\d+",
    rung=r"\d+",
    slot=r"\d+",


def rung_trials(wc):
    return [p for slot in SLOTS.rung_slots(int(wc.bracket), int(wc.rung)) for p in slot]


# The output path comes from the wildcards: Snakemake counts a params function taking ``output``
# as derived from it, and these params (the refit metric among them) must stay a plain trigger.
def promote_args(wc):
    b, i = int(wc.bracket), int(wc.rung)
    return call_args(
        slots=SLOTS.rung_slots(b, i),
        keep=SLOTS.keep(b, i),
        refit=config["refit"],
        outputs=[SLOTS.promotion_path(b, i)],
    )


rule promote:
    input:
        rung_trials,
    output:
        f"{OUT}/hyperband/b{{bracket}}/r{{rung}}/promotion.json",
    log:
        f"{OUT}/logs/slots/b{{bracket}}-r{{rung}}-promotion.log",
    conda:
        "../../envs/snaketune.yaml"
    params:
        call=promote_args,
    shell:
        CALL_COMMAND.format(name="promote")


localrules:
    promote,
