"""Command studies: your own training script as the trial, through real Snakemake.

The oracle is the script itself: the test runs examples/command/train.py by hand on the same
configurations and folds and compares the numbers with the trial files and the leaderboard.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from snaketune.config.load import ConfigError, load_config
from snaketune.search.command import fill, placeholders
from tests.conftest import REPO, jobs_run

TRAIN = REPO / "examples" / "command" / "train.py"
RUN = "python train.py --lr {lr} --hidden {hidden} --epochs 20 --steps 5 --fold {fold} --folds 2 --out {output}"


def hand_run(workdir, *args) -> dict:
    """train.py run by hand, as the oracle."""
    out = workdir / "hand.json"
    subprocess.run([sys.executable, "train.py", *map(str, args), "--out", str(out)], cwd=workdir, check=True)
    return json.loads(out.read_text())


def grid_study(make_study):
    study = make_study(
        {
            "study": "cmd",
            "command": {
                "run": RUN,
                "inputs": ["train.py"],
                "metrics": ["val_accuracy", "val_loss"],
                "greater_is_better": {"val_loss": False},
                "refit": True,
            },
            "folds": 2,
            "search": {"grid": {"lr": [0.3, 2.0], "hidden": [4, 16]}},
            "refit": "val_loss",
            "report": {"top_n": 5},
        }
    )
    shutil.copy(TRAIN, study.workdir / "train.py")
    return study


# ------------------------------------------------------------------------------------------------
# Filling the template: every value shell-quoted


NASTY = ["a b", "it's", 'say "hi"', "$(touch pwned1)", "`touch pwned2`", "x; touch pwned3 #", "a\nb", "*", "-n"]
# Values that are not strings reach the command as their JSON text (a grid list arrives as a tuple).
NOT_STRINGS = [[32, 32], (32, 32), [1], {"a": 1}, None, 1e-3, True]


@pytest.mark.parametrize("value", NASTY + NOT_STRINGS, ids=lambda v: None if isinstance(v, str) else repr(v))
def test_values_reach_the_shell_as_one_word(value, tmp_path):
    (tmp_path / "1").write_text("")  # what an unquoted [1] would glob to
    line = fill("printf '%s\\0' {v}", {"v": value})  # each argument ends in a NUL
    got = subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert got.split("\0") == [value if isinstance(value, str) else json.dumps(value), ""]
    assert [p.name for p in tmp_path.iterdir()] == ["1"]


def test_placeholders_refuse_format_tricks():
    assert placeholders("x {a} {{b}} {fold}") == ["a", "fold"]
    for bad in ("{a!r}", "{a:.3f}", "{a.__class__}", "{a[0]}", "{"):
        with pytest.raises(ValueError):
            placeholders(bad)


def config_problems(tmp_path, **command) -> list[str]:
    (tmp_path / "train.py").write_text("")
    config = {
        "study": "c",
        "command": {"run": "python train.py --lr {lr} --out {output}", "metrics": ["acc"], **command},
        "search": {"grid": {"lr": [0.1]}},
    }
    try:
        load_config(config, tmp_path)
    except ConfigError as error:
        return error.problems
    return []


def test_config_errors_are_one_line_each(tmp_path):
    assert config_problems(tmp_path, inputs=["train.py"]) == []
    (problem,) = config_problems(tmp_path, run="python train.py --lr {lr} --epochs {epochs} --out {output}")
    assert problem.startswith("command.run: unknown placeholder {epochs}")
    (problem,) = config_problems(tmp_path, inputs=["missing.py"])
    assert problem.startswith("command.inputs[0]: file 'missing.py' not found")
    (problem,) = config_problems(tmp_path, greater_is_better={"acc_": False})
    assert problem.startswith("command.greater_is_better.acc_: not one of command.metrics (did you mean 'acc'?")
    (problem,) = config_problems(tmp_path, run="python train.py --lr {lr}")
    assert problem == "command.run: {output} is missing: the command must write its metrics JSON there"
    (problem,) = config_problems(tmp_path, run="python train.py --lr {lr} --epochs {budget} --out {output}")
    assert problem == "command.run: {budget} needs a budgeted search (hyperband, successive_halving or bohb)"
    (problem,) = config_problems(tmp_path, run="python train.py --out {output}")
    assert "parameter 'lr' reaches the command neither as {lr} nor through {params_json}" in problem
    assert all("\n" not in p for p in config_problems(tmp_path, metrics=["1bad"], inputs=["nope"]))


def test_command_and_estimator_sections_do_not_mix(tmp_path):
    config = {
        "study": "c",
        "command": {"run": "python t.py --out {output}", "metrics": ["acc"]},
        "data": {"loader": "iris"},
        "search": {"grid": {"x": [1]}},
    }
    with pytest.raises(ConfigError) as info:
        load_config(config, tmp_path)
    assert "data: a command study takes no data (the command reads its own data); remove it" in info.value.problems
    estimator_study = {"study": "e", "data": {"loader": "iris"}, "estimator": {"class": "sklearn.svm.SVC"}}
    with pytest.raises(ConfigError) as info:
        load_config(dict(estimator_study, search={"grid": {"C": [1.0]}}, folds=3), tmp_path)
    assert info.value.problems == ["folds: only a command study takes folds; an estimator study sets cv.n_splits"]


def test_error_score_raise_names_the_configuration_and_keeps_the_log_tail(tmp_path, monkeypatch):
    """``error_score: raise``: the failed command's trial is not written; the error names the
    configuration and fold and carries the log's tail (what Snakemake then shows in the job log)."""
    from snaketune.evaluation.records import RunSettings, TrialSpec
    from snaketune.evaluation.trial import TrialFailed, execute
    from snaketune.search.plan import make_plan

    monkeypatch.chdir(tmp_path)
    (tmp_path / "fail.py").write_text("import sys\nprint('line', sys.argv[1])\nprint('the real reason')\nsys.exit(3)\n")
    config = load_config(
        {
            "study": "c",
            "command": {"run": "python fail.py {lr} {output}", "metrics": ["acc"], "inputs": ["fail.py"]},
            "search": {"grid": {"lr": [0.5]}},
            "error_score": "raise",
        },
        tmp_path,
    )
    plan = make_plan(config, tmp_path)
    (trial_id,) = plan.trial_ids
    output = plan.trial_path(trial_id)
    with pytest.raises(TrialFailed) as info:
        execute(TrialSpec.from_dict(plan.spec(trial_id)), output, RunSettings(raise_errors=True))
    message = str(info.value)
    assert "configuration {'lr': 0.5}, fold 0: CommandFailed: exit status 3: the real reason" in message
    assert "line 0.5" in message
    assert not (tmp_path / output).exists()


# ------------------------------------------------------------------------------------------------
# End to end


@pytest.mark.slow
def test_command_study_reruns_only_what_changed(make_study):
    """Scores equal hand runs; a second run does nothing; report settings rerun no trial; an edit
    of train.py reruns every trial; the refit reruns the best with --fold all."""
    study = grid_study(make_study)
    study.snakemake()
    board = study.leaderboard()
    assert len(board) == 4 and len(study.trial_files()) == 8
    for _, row in board.iterrows():
        for fold in range(2):
            hand = hand_run(
                study.workdir, "--lr", row["param_lr"], "--hidden", row["param_hidden"], "--epochs", 20,
                "--steps", 5, "--fold", fold, "--folds", 2,
            )  # fmt: skip
            assert row[f"split{fold}_test_val_accuracy"] == hand["val_accuracy"]
            assert row[f"split{fold}_test_neg_val_loss"] == -hand["val_loss"]
    # A loss ranks ascending: rank 1 is the lowest mean val_loss.
    best = study.best()
    assert best["refit"] == "neg_val_loss"
    assert (
        board.loc[board["rank_test_neg_val_loss"] == 1, "mean_test_neg_val_loss"].item()
        == board["mean_test_neg_val_loss"].max()
    )
    record = json.loads((study.out / "trials" / f"{best['config_key']}_0.json").read_text())
    assert record["command"]["metrics"]["val_loss"] == -record["test_scores"]["neg_val_loss"] > 0
    refit = json.loads((study.out / "refit.json").read_text())
    p = best["params"]
    hand = hand_run(
        study.workdir, "--lr", p["lr"], "--hidden", p["hidden"], "--epochs", 20, "--steps", 5, "--fold", "all"
    )
    assert refit["metrics"] == {"val_accuracy": hand["val_accuracy"], "val_loss": hand["val_loss"]}
    assert not refit["skipped"] and not (study.out / "model.pkl").exists()

    again = study.snakemake()
    assert "Nothing to be done" in again.stdout + again.stderr

    study.config["report"]["top_n"] = 3
    study.write()
    dry = study.snakemake("-n")
    assert jobs_run(dry, "trial") == 0 and jobs_run(dry, "report_pages") == 1

    with open(study.workdir / "train.py", "a") as fh:
        fh.write("# an edit\n")
    dry = study.snakemake("-n")
    assert jobs_run(dry, "trial") == 8


FAKE = textwrap.dedent(
    """\
    import json, os, subprocess, sys, time
    mode, name, out = sys.argv[1], sys.argv[2], sys.argv[3]
    params = json.load(open(sys.argv[4]))
    folder = os.path.dirname(out)
    with open(os.path.join(folder, "received.json"), "w") as fh:
        json.dump({"argv": name, "params_json": params["name"]}, fh)
    print("starting", mode, flush=True)
    if mode == "exit1":
        print("boom: the script failed", flush=True)
        sys.exit(1)
    if mode == "hang":
        child = subprocess.Popen(["sleep", "600"])
        open(os.path.join(folder, "child.pid"), "w").write(str(child.pid))
        time.sleep(600)
    json.dump({} if mode == "nometric" else {"score": len(name)}, open(out, "w"))
    """
)


@pytest.mark.slow
def test_failures_timeouts_and_nasty_values(make_study):
    """Exit 1 and a missing metric are failed trials with the log tail; a hanging command (and
    what it started) is killed at trial_timeout; values with spaces, quotes and shell
    metacharacters arrive intact, through argv and {params_json}, and execute nothing."""
    study = make_study(
        {
            "study": "fail",
            "command": {"run": "python fake.py {mode} {name} {output} {params_json}", "metrics": ["score"]},
            "search": {
                "grid": [
                    {"mode": ["ok"], "name": NASTY},
                    {"mode": ["exit1", "nometric", "hang"], "name": ["plain"]},
                ]
            },
            "trial_timeout": 5,
        }
    )
    (study.workdir / "fake.py").write_text(FAKE)
    study.snakemake()
    records = [json.loads(p.read_text()) for p in study.trial_files()]
    by_mode = {(r["params"]["mode"], r["params"]["name"]): r for r in records}
    for name in NASTY:
        record = by_mode["ok", name]
        assert record["status"] == "ok" and record["test_scores"] == {"score": len(name)}
        received = json.loads((study.out / "commands" / f"{record['trial_id']}" / "received.json").read_text())
        assert received == {"argv": name, "params_json": name}
    assert not list(study.workdir.rglob("pwned*"))

    failed = by_mode["exit1", "plain"]
    assert failed["status"] == "error"
    assert failed["error"] == "CommandFailed: exit status 1: boom: the script failed"
    assert "starting exit1" in failed["traceback"] and "boom" in failed["traceback"]
    nometric = by_mode["nometric", "plain"]
    assert nometric["status"] == "error" and nometric["error"].startswith("MissingMetric: 'score' missing")
    assert "starting nometric" in nometric["traceback"]
    hung = by_mode["hang", "plain"]
    assert hung["status"] == "timeout" and hung["error"] == "TrialTimeout: killed after 5 s (trial_timeout)"
    child = int((study.out / "commands" / hung["trial_id"] / "child.pid").read_text())
    assert not _alive(child)

    board = study.leaderboard()
    assert board["n_failed"].sum() == 2 and board["n_timeout"].sum() == 1
    assert np.isnan(board.loc[board["n_failed"] + board["n_timeout"] > 0, "mean_test_score"]).all()
    refit = json.loads((study.out / "refit.json").read_text())
    assert refit["skipped"] and "command.refit is false" in refit["reason"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie is dead, only not yet reaped


@pytest.mark.slow
def test_hyperband_resumes_promoted_models_from_checkpoints(make_study):
    """Epochs run over the study equal the plan's units (nothing retrained from scratch), and the
    final rung's scores equal train.py run straight to max_iter epochs by hand."""
    study = make_study(
        {
            "study": "cmd-hb",
            "command": {
                "run": "python train.py --lr {lr} --hidden {hidden} --epochs {budget} --steps 5 "
                "--checkpoint {checkpoint} --fold {fold} --folds 2 --out {output}",
                "inputs": ["train.py"],
                "metrics": ["val_accuracy", "val_loss", "epochs_run"],
                "greater_is_better": {"val_loss": False},
            },
            "folds": 1,  # {fold} = 0 only: the second fold would double the time and prove nothing new
            "search": {
                "hyperband": {
                    "max_iter": 9,
                    "aggressiveness": 3,
                    "params": {"lr": {"loguniform": [0.1, 3.0]}, "hidden": [4, 16]},
                }
            },
            "refit": "val_loss",
            "trials_per_job": "auto",
        }
    )
    shutil.copy(TRAIN, study.workdir / "train.py")
    study.snakemake()
    best = study.best()
    records = [json.loads(p.read_text()) for p in study.trial_files()]
    assert all(r["status"] == "ok" for r in records)
    epochs_run = sum(r["command"]["metrics"]["epochs_run"] for r in records)
    assert epochs_run == best["plan"]["units"] == best["used"]["units_trained"]
    assert sum(r["units_trained"] for r in records) == epochs_run
    promoted = [r for r in records if r["rung"] > 0]
    assert promoted and all(r["command"]["metrics"]["epochs_run"] < r["budget"] for r in promoted)
    for r in records:
        if r["budget"] == 9:
            p = r["params"]
            hand = hand_run(
                study.workdir, "--lr", p["lr"], "--hidden", p["hidden"], "--epochs", 9, "--steps", 5,
                "--fold", r["fold"], "--folds", 2,
            )  # fmt: skip
            assert r["test_scores"]["neg_val_loss"] == -hand["val_loss"]
    again = study.snakemake()
    assert "Nothing to be done" in again.stdout + again.stderr


ENV_PROBE = """
import sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ResourceSettings, OutputSettings
with SnakemakeApi(OutputSettings()) as api:
    wf = api.workflow(resource_settings=ResourceSettings(cores=1), snakefile=Path(sys.argv[1]), workdir=Path("."))
    for rule in wf._workflow.rules:
        print(rule.name, rule.conda_env, rule.container_img)
"""


@pytest.mark.slow
def test_conda_env_and_container_reach_the_command_rules(make_study):
    """The trial and refit rules of a command study carry its conda env file and image (what
    --use-conda / --sdm apptainer use); the other rules keep snaketune's own env."""
    study = grid_study(make_study)
    (study.workdir / "env.yaml").write_text("channels: [conda-forge]\ndependencies: [python=3.11, numpy]\n")
    study.config["command"].update(conda="env.yaml", container="docker://python:3.11-slim")
    study.write()
    lint = study.snakemake("--lint")
    assert "Congratulations" in lint.stdout + lint.stderr
    probe = subprocess.run(
        [sys.executable, "-c", ENV_PROBE, str(REPO / "Snakefile")],
        cwd=study.workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    rules = {line.split()[0]: line.split()[1:] for line in probe.stdout.splitlines() if len(line.split()) == 3}
    env = str(study.workdir / "env.yaml")
    assert rules["trial"] == [env, "docker://python:3.11-slim"]
    assert rules["refit_command"] == [env, "docker://python:3.11-slim"]
    assert rules["aggregate"] == ["../../envs/snaketune.yaml", "None"]


@pytest.mark.slow
def test_command_study_with_model_based_search(make_study):
    """search.optuna over your own script: the configurations and scores are Optuna's batch
    optimisation run by hand, with train.py run by hand as the objective."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    study = make_study(
        {
            "study": "cmd-tpe",
            "command": {"run": RUN, "inputs": ["train.py"], "metrics": ["val_accuracy"]},
            "folds": 2,
            "search": {
                "optuna": {
                    "sampler": "tpe",
                    "n_trials": 4,
                    "batch_size": 2,
                    "seed": 0,
                    "params": {"lr": {"loguniform": [0.03, 3.0]}, "hidden": [4, 16]},
                }
            },
            "refit": "val_accuracy",
        }
    )
    shutil.copy(TRAIN, study.workdir / "train.py")
    study.snakemake()

    def score(params: dict) -> float:
        args = ["--lr", params["lr"], "--hidden", params["hidden"], "--epochs", 20, "--steps", 5, "--folds", 2]
        return float(np.mean([hand_run(study.workdir, *args, "--fold", k)["val_accuracy"] for k in range(2)]))

    by_hand = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0), direction="maximize")
    dists = {"hidden": CategoricalDistribution([4, 16]), "lr": FloatDistribution(0.03, 3.0, log=True)}
    asked, values = [], []
    for _ in range(2):  # rounds of 2: ask both, then tell both
        trials = [by_hand.ask(dists) for _ in range(2)]
        for trial in trials:
            values.append(score(trial.params))
            by_hand.tell(trial, values[-1])
            asked.append(trial.params)
    board = study.leaderboard().sort_values("number")
    assert [json.loads(p) for p in board["params"]] == asked
    np.testing.assert_allclose(board["mean_test_val_accuracy"], values, rtol=0, atol=1e-12)
    again = study.snakemake()
    assert "Nothing to be done" in again.stdout + again.stderr
