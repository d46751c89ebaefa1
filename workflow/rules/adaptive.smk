# Hyperband / successive halving as a static DAG of slots on the trial core: slot j of rung i of
# bracket b is one job of ordinary trials, one per fold (snaketune/evaluation/adaptive.py); in
# rung i > 0 it trains the j-th survivor of rung i-1, read from that rung's promotion file.
SLOTS = STUDY.strategy.layout
SLOT_GROUPS = ws.slot_groups(STUDY)
if ws.is_main_process(workflow):
    print(SLOTS.summary(), file=sys.stderr)


wildcard_constraints:
    bracket=r"\d+",
    rung=r"\d+",
    slot=r"\d+",


def _bri(wc):
    return int(wc.bracket), int(wc.rung), int(wc.slot)


def slot_inputs(wc):
    """Later rungs start from the previous promotion (rung 0: sampled, or a proposal file)."""
    b, i, _ = _bri(wc)
    return SLOTS.slot_inputs(b, i)


def slot_args(wc):
    return ws.slot_args(STUDY, *_bri(wc))


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


if not SLOT_GROUPS:

    rule slot:
        input:
            unpack(slot_inputs),
            **TRIAL_INPUTS,
        output:
            trials=[
                f"{OUT}/trials/b{{bracket}}-r{{rung}}-s{{slot}}_{k}.json"
                for k in range(SLOTS.n_folds)
            ],
            states=[
                f"{OUT}/trials/b{{bracket}}-r{{rung}}-s{{slot}}_{k}.pkl"
                for k in range(SLOTS.n_folds)
            ],
        log:
            f"{OUT}/logs/slots/b{{bracket}}-r{{rung}}-s{{slot}}.log",
        # Promoted models first, better ones (lower slots) first: the "high scores" scheme.
        priority: lambda wc: SLOTS.priority(*_bri(wc))
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
            call=slot_args,
        shell:
            CALL_COMMAND.format(name="trials")

else:
    # trials_per_job > 1 or auto: several slots of one rung per job (a rung of 256 one-call
    # models is not 256 jobs), still one trial file and one model state per slot and fold.
    for _b, _i, _group in SLOT_GROUPS:

        rule:
            name:
                f"slots_b{_b}_r{_i}_s{_group[0]}"
            input:
                **SLOTS.slot_inputs(_b, _i),
                **TRIAL_INPUTS,
            output:
                trials=[p for j in _group for p in SLOTS.slot_trials(_b, _i, j)],
                states=[
                    p.removesuffix(".json") + ".pkl"
                    for j in _group
                    for p in SLOTS.slot_trials(_b, _i, j)
                ],
            log:
                f"{OUT}/logs/slots/b{_b}-r{_i}-s{_group[0]}-{_group[-1]}.log",
            priority: SLOTS.priority(_b, _i, _group[0])
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
                call=ws.slot_group_args(STUDY, _b, _i, _group),
            shell:
                CALL_COMMAND.format(name="trials")


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
