# Hyperband / successive halving as a static DAG: slot j of rung i of bracket b trains the j-th
# survivor of rung i-1 (read from its promotion file). See snaketune/evaluation/adaptive.py.
import sys as _sys

from snaketune.evaluation import adaptive as hw
from snaketune.config.load import ConfigError as _ConfigError

try:
    HB = hw.setup(STUDY)
except _ConfigError as _error:
    ws.fail_config(_error)
if ws.is_main_process(workflow):
    print(HB.summary(), file=_sys.stderr)


wildcard_constraints:
    bracket=r"\d+",
    rung=r"\d+",
    slot=r"\d+",


def _bri(wc):
    return int(wc.bracket), int(wc.rung), int(wc.slot)


def hb_previous(wc):
    """Rung 0 starts from the sampled configurations; later rungs from the promotion file."""
    b, i, _ = _bri(wc)
    if i == 0:
        return {}
    return {
        "promotion": HB.promotion_path(b, i - 1),
        # The survivors' saved models (partial_fit state; None for n_samples).
        "states": HB.rung_states(b, i - 1),
    }


rule hyperband_eval:
    input:
        unpack(hb_previous),
        data=multiext(f"{PLAN.data_dir}/", "X.npy", "y.npy", "meta.json"),
        splits=PLAN.splits_path,
    output:
        result=f"{HB.root}/b{{bracket}}/r{{rung}}/s{{slot}}.json",
        state=f"{HB.root}/b{{bracket}}/r{{rung}}/s{{slot}}.pkl",
    log:
        f"{OUT}/logs/hyperband/b{{bracket}}/r{{rung}}/s{{slot}}.log",
    # Promoted models first, better ones (lower slots) first: the "high scores" scheme.
    priority: lambda wc: HB.priority(*_bri(wc))
    conda:
        "../../envs/snaketune.yaml"
    params:
        # The evaluation's definition plus its files, for the warm worker (scripts/trial_client.py).
        call=lambda wc, input, output: json.dumps(
            {
                "spec": HB.eval_spec(*_bri(wc)),
                "outputs": [output.result, output.state],
                "promotion": input.get("promotion") or None,
            }
        ),
    shell:
        CALL_COMMAND.format(name="hyperband_eval")


rule hyperband_promote:
    input:
        lambda wc: HB.rung_results(int(wc.bracket), int(wc.rung)),
    output:
        f"{HB.root}/b{{bracket}}/r{{rung}}/promotion.json",
    log:
        f"{OUT}/logs/hyperband/b{{bracket}}/r{{rung}}/promotion.log",
    conda:
        "../../envs/snaketune.yaml"
    params:
        call=lambda wc, input, output: json.dumps(
            {
                "results": list(input),
                "keep": HB.schedule.bracket(int(wc.bracket)).survivors(int(wc.rung)),
                "refit": config["refit"],
                "outputs": [str(output[0])],
            }
        ),
    shell:
        CALL_COMMAND.format(name="hyperband_promote")


rule hyperband_aggregate:
    input:
        HB.all_results,
    output:
        leaderboard=f"{OUT}/leaderboard.csv",
        markdown=f"{OUT}/leaderboard.md",
        history=f"{OUT}/history.csv",
        best=f"{OUT}/best.json",
    log:
        f"{OUT}/logs/hyperband/aggregate.log",
    conda:
        "../../envs/snaketune.yaml"
    params:
        plan=HB.schedule.to_dict(),
        settings=HB.settings,
        scoring=config["scoring"],
        refit=config["refit"],
    script:
        "../../scripts/hyperband_aggregate.py"


rule hyperband_plot:
    input:
        f"{OUT}/history.csv",
    output:
        f"{OUT}/plots/{hw.PLOT_NAME}.png",
    log:
        f"{OUT}/logs/hyperband/plot.log",
    conda:
        "../../envs/snaketune.yaml"
    params:
        refit=config["refit"],
        title=f"{config['study']}: {HB.schedule.kind}, every model",
    script:
        "../../scripts/hyperband_plot.py"


rule hyperband_refit:
    input:
        data=multiext(
            f"{PLAN.data_dir}/",
            "X.npy",
            "y.npy",
            "X_test.npy",
            "y_test.npy",
            "meta.json",
        ),
        best=f"{OUT}/best.json",
    output:
        model=f"{OUT}/model.pkl",
        summary=f"{OUT}/refit.json",
    log:
        f"{OUT}/logs/hyperband/refit.log",
    conda:
        "../../envs/snaketune.yaml"
    params:
        spec=HB.base,
    script:
        "../../scripts/hyperband_refit.py"
