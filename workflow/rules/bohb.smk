# BOHB (snaketune/strategies/bohb.py) on the Hyperband slots of adaptive.smk: before bracket b
# starts, its propose step fits a TPE model on every result of the brackets before it and writes
# the bracket's first-rung configurations, which its rung-0 slots read at run time.


def propose_inputs(wc):
    """Every trial file of the brackets scheduled before this one: brackets run one after another."""
    return [p for slot in SLOTS.earlier_slots(int(wc.bracket)) for p in slot["trials"]]


def propose_args(wc):
    # In a file: the call lists every earlier trial file. The output path comes from the
    # wildcards: Snakemake counts a params function taking ``output`` as derived from it, and
    # these params must stay a plain trigger (an edited space or seed reruns the proposals).
    b = int(wc.bracket)
    args = STUDY.strategy.propose_args(b)
    return call_file(OUT, outputs=[SLOTS.proposals_path(b)], **args)


rule propose:
    input:
        propose_inputs,
    output:
        f"{OUT}/bohb/b{{bracket}}/proposals.json",
    log:
        f"{OUT}/logs/slots/b{{bracket}}-proposals.log",
    conda:
        "../../envs/snaketune.yaml"
    params:
        call=propose_args,
    shell:
        CALL_COMMAND.format(name="step")


# Fitting TPE on a few hundred points takes well under a second: on a cluster, the submit host.
localrules:
    propose,
