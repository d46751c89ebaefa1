# BOHB (snaketune/strategies/bohb.py) on the Hyperband slots of adaptive.smk: before bracket b
# starts, its propose step fits a TPE model on every result of the brackets before it and writes
# the bracket's first-rung configurations, which its rung-0 slots read at run time.


rule propose:
    input:
        lambda wc: [
            p
            for slot in SLOTS.earlier_slots(int(wc.bracket))
            for p in slot["trials"]
        ],
    output:
        f"{OUT}/bohb/b{{bracket}}/proposals.json",
    log:
        f"{OUT}/logs/slots/b{{bracket}}-proposals.log",
    conda:
        "../../envs/snaketune.yaml"
    params:
        call=lambda wc, output: ws.call_file(
            STUDY, outputs=[output[0]], **STUDY.strategy.propose_args(int(wc.bracket))
        ),
    shell:
        CALL_COMMAND.format(name="step")


# Fitting TPE on a few hundred points takes well under a second: on a cluster, the submit host.
localrules:
    propose,
