"""Unit tests, without Snakemake, for modules the end-to-end tests used to reach alone:
``evaluation.adaptive`` (the plan and what a slot's trial trains), ``evaluation.budget`` through
``fit_and_score`` (which knows nothing of budgets), ``results.optuna_study`` (the journal) and
``base.procs`` (the fork-with-deadline helper). Numbers are compared with scikit-learn's and
Optuna's own, computed here on the same folds."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from snaketune.base.procs import Forked, fork_with_deadline, kill_group
from snaketune.config.load import load_config
from snaketune.evaluation.budget import Budget, BudgetedTraining
from snaketune.evaluation.trial import fit_and_score
from snaketune.search.plan import make_plan
from snaketune.strategies.registry import strategy_for
from tests.configs import mlp_circles

SPACE = {"alpha": {"loguniform": [1e-5, 1e-2]}, "hidden_layer_sizes": [[4], [8]]}


# ----------------------------------------------------------------------------------------------
# evaluation.adaptive: the plan


def hyperband_plan(tmp_path, monkeypatch, **hyperband):
    monkeypatch.chdir(tmp_path)
    spec = {"max_iter": 9, "aggressiveness": 3, "seed": 4, "params": SPACE, **hyperband}
    config = load_config(mlp_circles("units", {"hyperband": spec}, n_samples=120), Path("."), check_data=False)
    plan = make_plan(config, candidates=[])
    return config, plan, strategy_for(config, plan).layout


def test_adaptive_plan_samples_like_parameter_sampler_and_schedules_every_slot(tmp_path, monkeypatch):
    from scipy.stats import loguniform
    from sklearn.model_selection import ParameterSampler

    config, plan, layout = hyperband_plan(tmp_path, monkeypatch)
    # max_iter 9, eta 3: brackets 2, 1, 0 with (models, units) per rung (9,1)(3,3)(1,9) / (5,3)(1,9) / (3,9).
    rungs = {b.id: [(r.n_models, r.units) for r in b.rungs] for b in layout.schedule.brackets}
    assert rungs == {2: [(9, 1), (3, 3), (1, 9)], 1: [(5, 3), (1, 9)], 0: [(3, 9)]}
    dists = {"alpha": loguniform(1e-5, 1e-2), "hidden_layer_sizes": [[4], [8]]}
    for b, models in layout.models.items():
        expected = list(ParameterSampler(dists, len(models), random_state=4 + b))
        assert [m["params"] for m in models] == [json.loads(json.dumps(p)) for p in expected]
        assert [m["model_id"] for m in models] == [f"b{b}-{j}" for j in range(len(models))]
    keys = [m["config_key"] for ms in layout.models.values() for m in ms]
    assert len(set(keys)) == len(keys)
    # One slot per model per rung, each with one trial per fold, on its rung's budget.
    assert len(layout.slots) == 9 + 3 + 1 + 5 + 1 + 3
    assert len(layout.trial_paths) == len(layout.slots) * layout.n_folds == len(layout.slots) * 2
    first, promoted = layout.slot_specs(2, 0, 4), layout.slot_specs(2, 1, 0)
    assert [s["trial_id"] for s in first] == ["b2-r0-s4_0", "b2-r0-s4_1"]
    assert first[0]["params"] == layout.models[2][4]["params"] and first[0]["budget"]["units"] == 1
    assert promoted[0]["slot"]["promotion"] == layout.promotion_path(2, 0) and "params" not in promoted[0]
    assert promoted[0]["budget"]["units"] == 3 and layout.slot_inputs(2, 1) == {
        "promotion": layout.promotion_path(2, 0)
    }
    assert [layout.keep(2, i) for i in range(2)] == [3, 1]
    # Better slots of later rungs first.
    assert layout.priority(2, 1, 0) > layout.priority(2, 1, 2) > layout.priority(2, 0, 0)
    # Job groups partition every rung's slots, whatever trials_per_job.
    for per_job in (1, 4, "auto"):
        groups = layout.slot_groups(per_job)
        covered = sorted((b, i, j) for b, i, js in groups for j in js)
        assert covered == sorted(layout.slots)
    assert len(layout.slot_groups(4)) == sum(-(-n // 2) for n in (9, 3, 1, 5, 1, 3))


def test_adaptive_settings_resolve_patience_as_dask_ml(tmp_path, monkeypatch):
    _, _, layout = hyperband_plan(tmp_path, monkeypatch, patience=True)
    assert layout.settings["patience"] == 9 // 3  # dask-ml: max(max_iter // aggressiveness, 1)
    _, _, layout = hyperband_plan(tmp_path, monkeypatch, patience=False)
    assert layout.settings["patience"] is None
    _, _, layout = hyperband_plan(tmp_path, monkeypatch, patience=2)
    assert layout.settings["patience"] == 2


@pytest.mark.filterwarnings("ignore:The total space of parameters")
def test_a_too_small_space_is_one_error_naming_the_bracket(tmp_path, monkeypatch):
    from snaketune.config.load import ConfigError

    with pytest.raises(
        ConfigError, match=r"search.hyperband.params: the space has only 2 configurations but bracket 2"
    ):
        hyperband_plan(tmp_path, monkeypatch, params={"hidden_layer_sizes": [[4], [8]]})


# ----------------------------------------------------------------------------------------------
# A slot's training: fit_and_score with a BudgetedTraining equals scikit-learn's partial_fit loop


def fold_data():
    from sklearn.datasets import make_classification
    from sklearn.model_selection import StratifiedKFold

    X, y = make_classification(n_samples=150, n_features=6, n_informative=4, n_classes=3, random_state=1)
    train, test = next(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    return X, y, train, test


def by_hand(X, y, train, test, calls: int, alpha: float):
    """SGDClassifier.partial_fit on every training row (no chunk_size: one block), ``calls`` times."""
    from sklearn.linear_model import SGDClassifier

    model = SGDClassifier(alpha=alpha, random_state=0)
    scores = []
    for _ in range(calls):
        model.partial_fit(X[np.sort(train)], y[np.sort(train)], classes=np.unique(y))
        scores.append(model.score(X[test], y[test]))
    return model, scores


def test_a_budgeted_fit_is_sklearns_partial_fit_sequence_and_continues_from_its_state():
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import get_scorer

    X, y, train, test = fold_data()
    scorers = {"accuracy": get_scorer("accuracy")}
    # patience 1 scores after every unit; tol -1 never sees a plateau.
    budget = Budget(resource="partial_fit", units=3, max_units=9, patience=1, tol=-1.0, metric="accuracy")

    def run(units, state=None, done=0, history=()):
        training = BudgetedTraining(Budget(**dict(budget.to_dict(), units=units)), [0, 0], state, done, history)
        result = fit_and_score(
            SGDClassifier(random_state=0), X, y, train=train, test=test, scorers=scorers,
            parameters={"alpha": 1e-3}, fit=training,
        )  # fmt: skip
        return result, training.model

    model, scores = by_hand(X, y, train, test, 9, 1e-3)
    first, state = run(3)
    assert first["status"] == "ok" and first["budget"] == 3 and first["units_trained"] == 3
    assert [h["score"] for h in first["history"]] == scores[:3]  # scored after every unit (patience 1)
    # A promoted model continues from its saved state: 3 + 6 calls are sklearn's 9.
    final, continued = run(9, state, 3, first["history"])
    assert final["units_trained"] == 6 and final["n_rows"] == len(train)
    assert [h["score"] for h in final["history"]] == scores
    assert final["test_scores"]["accuracy"] == pytest.approx(model.score(X[test], y[test]), abs=0)
    np.testing.assert_array_equal(continued.coef_, model.coef_)
    # Without a budget fit_and_score is one plain fit and adds none of the budget's fields.
    plain = fit_and_score(
        SGDClassifier(random_state=0), X, y, train=train, test=test, scorers=scorers, parameters={"alpha": 1e-3}
    )
    reference = SGDClassifier(alpha=1e-3, random_state=0).fit(X[train], y[train])
    assert plain["test_scores"]["accuracy"] == reference.score(X[test], y[test])
    assert not {"budget", "history", "resource"} & set(plain)


def test_a_budgeted_fit_that_fails_keeps_no_model():
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import get_scorer

    X, y, train, test = fold_data()
    training = BudgetedTraining(Budget(resource="partial_fit", units=2, max_units=2), [0, 0])
    result = fit_and_score(
        SGDClassifier(), X, y, train=train, test=test, scorers={"accuracy": get_scorer("accuracy")},
        parameters={"alpha": -1.0}, fit=training,
    )  # fmt: skip
    assert result["status"] == "error" and "alpha" in result["error"] and "budget" not in result
    assert training.model is None


# ----------------------------------------------------------------------------------------------
# results.optuna_study: the journal is the study Optuna itself would hold


def test_the_journal_rebuilds_optunas_study(tmp_path):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from snaketune.evaluation.records import TrialRecord, TrialStatus
    from snaketune.results.optuna_study import write_journal
    from snaketune.search.optuna_space import STUDY_NAME

    params = {"alpha": {"loguniform": [1e-5, 1e-1]}, "kernel": ["rbf", "linear"]}
    settings = {"params": params, "sampler": "tpe", "seed": 0, "batch_size": 2, "n_trials": 3, "refit": "accuracy"}
    settings["error_score"] = "nan"
    configs = [({"alpha": 1e-3, "kernel": "rbf"}, [0.5, 0.7]), ({"alpha": 1e-2, "kernel": "linear"}, [0.9, 0.8])]
    configs.append(({"alpha": 1e-4, "kernel": "rbf"}, [None, None]))  # every fold failed
    records, rows = {}, []
    for number, (values, scores) in enumerate(configs):
        ids = [f"r{number // 2}-{number}_{k}" for k in range(2)]
        rows.append({"number": number, "round": number // 2, "trial_ids": ids})
        for k, (tid, score) in enumerate(zip(ids, scores, strict=True)):
            records[tid] = TrialRecord(
                trial_id=tid, config_key=f"key{number}", fold=k, params=values, seed=0,
                status=TrialStatus.OK if score is not None else TrialStatus.ERROR, test_scores={"accuracy": score}, train_scores={},
                fit_time=0.1, score_time=0.01, start=f"2026-01-01T00:00:0{number}+00:00",
                end=f"2026-01-01T00:00:0{number + 1}+00:00",
            )  # fmt: skip
    path = tmp_path / "study.journal"
    write_journal({"settings": settings, "rows": rows}, {"study": "s"}, records, str(path))
    assert [p.name for p in tmp_path.iterdir()] == ["study.journal"]  # no temporary file left

    study = optuna.load_study(study_name=STUDY_NAME, storage=JournalStorage(JournalFileBackend(str(path))))
    trials = study.get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2 + [optuna.trial.TrialState.FAIL]
    assert [t.value for t in trials[:2]] == [np.mean([0.5, 0.7]), np.mean([0.9, 0.8])]
    assert study.best_trial.number == 1 and study.best_params == {"alpha": 1e-2, "kernel": "linear"}
    assert study.best_value == np.mean([0.9, 0.8]) and study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert trials[1].user_attrs == {
        "config_key": "key1", "round": 0, "trial_ids": ["r0-1_0", "r0-1_1"], "fold_scores": [0.9, 0.8]
    }  # fmt: skip
    assert {k: study.user_attrs[k] for k in ("sampler", "n_trials", "study")} == {
        "sampler": "tpe",
        "n_trials": 3,
        "study": "s",
    }
    # Optuna's own sampler, told the same trials, can go on from the journal.
    sampler = optuna.samplers.TPESampler(seed=0)
    resumed = optuna.load_study(
        study_name=STUDY_NAME, storage=JournalStorage(JournalFileBackend(str(path))), sampler=sampler
    )
    asked = resumed.ask()
    assert asked.number == 3


# ----------------------------------------------------------------------------------------------
# base.procs: one fork-with-deadline helper


def test_fork_with_deadline_returns_output_status_or_kills_at_the_deadline():
    done = fork_with_deadline(lambda: b"result", 30)
    assert done == Forked(b"result", 0) and done.ok and not done.timed_out
    raised = fork_with_deadline(lambda: 1 / 0, 30)
    assert raised.output == b"" and not raised.ok and raised.how() == "exit status 1"
    exited = fork_with_deadline(lambda: os._exit(3), 30)
    assert exited.how() == "exit status 3"
    killed = fork_with_deadline(lambda: os.kill(os.getpid(), signal.SIGKILL), 30)  # as by the OOM killer
    assert killed.how() == f"signal {signal.SIGKILL.value}" and not killed.timed_out
    t0 = time.monotonic()
    hung = fork_with_deadline(lambda: time.sleep(60), 0.5)
    assert hung.timed_out and hung.how() == "killed at its deadline" and time.monotonic() - t0 < 20


def test_fork_with_deadline_ends_with_its_child_when_a_helper_it_started_holds_the_pipe():
    """User code that leaves a process behind (a pool it did not close) keeps the pipe open: the
    result still counts once the child exits, not at the deadline."""
    helpers = []

    def leave_a_helper():
        pid = os.fork()  # as a fork-based multiprocessing pool: it inherits the pipe
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        helpers.append(pid)
        return b"x" * 200_000  # more than a pipe holds: read while the child is still writing

    t0 = time.monotonic()
    done = fork_with_deadline(leave_a_helper, 20)
    assert done.ok and not done.timed_out and done.output == b"x" * 200_000
    assert time.monotonic() - t0 < 10


def test_kill_group_ends_a_whole_process_group():
    import subprocess

    proc = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60; wait"], start_new_session=True)
    time.sleep(0.2)
    kill_group(proc.pid)
    assert proc.wait(timeout=20) == -signal.SIGKILL
    kill_group(proc.pid)  # gone already: no error


# ----------------------------------------------------------------------------------------------
# base.memo: one memo helper for results computed from files


def test_memo_on_files_reads_a_file_again_only_when_it_changed(tmp_path):
    from snaketune.base.jsonutil import write_json_atomic
    from snaketune.base.memo import memo_on_files

    reads = []

    @memo_on_files(maxsize=1)
    def load(path):
        reads.append(path)
        return json.loads(Path(path).read_text())

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    write_json_atomic(a, {"v": 1})
    write_json_atomic(b, {"v": 2})
    assert load(str(a)) == load(str(a)) == {"v": 1} and reads == [str(a)]
    write_json_atomic(a, {"v": 3})  # replaced (a new inode): never the stale value
    assert load(str(a)) == {"v": 3} and len(reads) == 2
    assert load(str(b)) == {"v": 2} and load(str(a)) == {"v": 3} and len(reads) == 4  # maxsize 1
    load.cache_clear()
    assert load(str(a)) == {"v": 3} and len(reads) == 5


def test_run_in_forks_returns_every_tasks_status_and_reports_its_exception(capfd):
    from snaketune.base.procs import run_in_forks

    def fails():
        raise ValueError("figure 2 cannot be drawn")

    statuses = run_in_forks({"one": lambda: None, "two": fails, "three": lambda: os._exit(4)}, parallel=2)
    assert statuses == {"one": 0, "two": 1, "three": 4}
    err = capfd.readouterr().err
    assert err.startswith("two: Traceback") and "ValueError: figure 2 cannot be drawn" in err


# ----------------------------------------------------------------------------------------------
# evaluation.trial end to end without Snakemake: a slot's trial on prepared data, in a fork under
# trial_timeout, equals scikit-learn's partial_fit loop on the same fold


def prepared_hyperband(tmp_path, monkeypatch):
    from snaketune.base.data import prepare
    from snaketune.base.splits import compute_splits, save_splits

    config, plan, layout = hyperband_plan(tmp_path, monkeypatch)
    prepare(config["data"], Path("."), Path(plan.data_dir), task=plan.task)
    save_splits(plan.splits_path, compute_splits(config["cv"], np.load(f"{plan.data_dir}/y.npy"), plan.classifier))
    return config, plan, layout


def test_a_slot_trial_in_a_fork_trains_as_sklearn_and_a_timeout_is_recorded(tmp_path, monkeypatch):
    import pickle

    from sklearn.base import clone
    from sklearn.neural_network import MLPClassifier

    from snaketune.base.splits import load_splits
    from snaketune.evaluation.records import RunSettings, TrialSpec, TrialStatus, read_record, state_path
    from snaketune.evaluation.trial import execute

    config, plan, layout = prepared_hyperband(tmp_path, monkeypatch)
    spec = TrialSpec.from_dict(layout.slot_specs(0, 0, 1)[1])  # bracket 0: 9 units from scratch, fold 1
    output = layout.trial_path(spec.trial_id)
    record = execute(spec, output, RunSettings(timeout=120))  # through fork_with_deadline
    assert record.status is TrialStatus.OK and read_record(output).test_scores == record.test_scores

    X, y = np.load(f"{plan.data_dir}/X.npy"), np.load(f"{plan.data_dir}/y.npy")
    train, test = load_splits(plan.splits_path)[1]
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.params.items()}
    model = MLPClassifier(solver="sgd", random_state=config["seed"], **params)
    for _ in range(9):  # no chunk_size: every call on all training rows
        model.partial_fit(X[np.sort(train)], y[np.sort(train)], classes=np.unique(y))
    assert record.test_scores["accuracy"] == model.score(X[test], y[test])
    assert (record.budget, record.units_trained, record.n_rows) == (9, 9, len(train))
    saved = pickle.loads(state_path(output).read_bytes())
    np.testing.assert_array_equal(saved.predict_proba(X[test]), model.predict_proba(X[test]))
    assert clone(saved).get_params() == clone(model).get_params()

    # Killed at its deadline: a timeout record naming the trial, and an empty state for its slot.
    late = TrialSpec.from_dict(layout.slot_specs(0, 0, 2)[0])
    timed_out = execute(late, layout.trial_path(late.trial_id), RunSettings(timeout=0.001))
    assert timed_out.status is TrialStatus.TIMEOUT and timed_out.trial_id == "b0-r0-s2_0"
    assert timed_out.error == "TrialTimeout: killed after 0.001 s (trial_timeout)" and timed_out.budget == 9
    assert pickle.loads(state_path(layout.trial_path(late.trial_id)).read_bytes()) is None


# ----------------------------------------------------------------------------------------------
# evaluation.nested and results.adaptive


def test_nested_inner_splits_and_outer_score_are_sklearns(tmp_path):
    from sklearn.datasets import load_iris
    from sklearn.model_selection import StratifiedKFold
    from sklearn.neighbors import KNeighborsClassifier

    from snaketune.base.splits import load_splits, save_splits
    from snaketune.evaluation.nested import make_inner_splits, score_outer_fold

    X, y = load_iris(return_X_y=True)
    outer = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    save_splits(tmp_path / "outer.npz", outer)
    cv = {"kind": "stratified", "n_splits": 4, "shuffle": False}
    n_inner, n_train = make_inner_splits(
        cv=cv, classifier=True, y=y, outer_splits=str(tmp_path / "outer.npz"), outer_fold=2,
        output=str(tmp_path / "inner.npz"),
    )  # fmt: skip
    outer_train, outer_test = outer[2]
    expected = [(outer_train[a], outer_train[b]) for a, b in StratifiedKFold(4).split(X[outer_train], y[outer_train])]
    inner = load_splits(tmp_path / "inner.npz")
    assert (n_inner, n_train) == (4, len(outer_train))
    for (a, b), (c, d) in zip(inner, expected, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    result = score_outer_fold(
        data={"X": X, "y": y}, outer_splits=str(tmp_path / "outer.npz"), outer_fold=2,
        estimator={"class": "sklearn.neighbors.KNeighborsClassifier"}, allowed_modules=[], seed=0,
        scoring=["accuracy"], params={"n_neighbors": 7},
    )  # fmt: skip
    knn = KNeighborsClassifier(n_neighbors=7).fit(X[outer_train], y[outer_train])
    assert result["outer_scores"] == {"accuracy": knn.score(X[outer_test], y[outer_test])}
    assert (result["n_train"], result["n_test"]) == (len(outer_train), len(outer_test))


def test_history_frame_averages_each_models_points_over_folds_once():
    from types import SimpleNamespace

    from snaketune.results.adaptive import history_frame

    def record(rung, fold, history, model="b1-0"):
        return SimpleNamespace(bracket=1, rung=rung, slot=0, fold=fold, model_id=model, end="t", history=history)

    records = [
        record(0, 0, [{"units": 1, "score": 0.5}]),
        record(0, 1, [{"units": 1, "score": 0.7}]),
        # Rung 1 carries the rung-0 point over: it is kept once, not counted again.
        record(1, 0, [{"units": 1, "score": 0.5}, {"units": 3, "score": 0.8}]),
        record(1, 1, [{"units": 1, "score": 0.7}, {"units": 3, "score": None}]),  # a failed scoring
    ]
    frame = history_frame(records, "accuracy")
    assert frame[["rung", "units", "n_folds"]].values.tolist() == [[0, 1, 2], [1, 3, 2]]
    assert frame["mean_test_accuracy"].iloc[0] == np.mean([0.5, 0.7])
    assert np.isnan(frame["mean_test_accuracy"].iloc[1])


@pytest.mark.parametrize("fail", ["exit", False])
def test_a_timed_trial_that_exits_fails_with_its_traceback_and_an_ok_one_equals_sklearn(
    tmp_path, monkeypatch, capfd, fail
):
    """``sys.exit`` in user code inside the forked trial: no record, a RuntimeError naming the exit,
    the SystemExit traceback on stderr (the job's log); an ordinary trial's score is sklearn's."""
    from sklearn.neighbors import KNeighborsClassifier

    from snaketune.base.data import prepare
    from snaketune.base.splits import compute_splits, load_splits, save_splits
    from snaketune.evaluation.records import RunSettings, TrialSpec
    from snaketune.evaluation.trial import execute
    from tests.configs import iris

    monkeypatch.chdir(tmp_path)
    raw = iris("exits", "tests.estimators.FlakyClassifier", {"grid": {"fail": [fail], "n_neighbors": [3]}})
    config = load_config(raw, Path("."))
    plan = make_plan(config)
    prepare(config["data"], Path("."), Path(plan.data_dir), task=plan.task)
    save_splits(plan.splits_path, compute_splits(config["cv"], np.load(f"{plan.data_dir}/y.npy"), True))
    (trial_id,) = [t for t in plan.trial_ids if t.endswith("_1")]
    output = f"{plan.out}/trials/{trial_id}.json"
    if fail == "exit":
        with pytest.raises(RuntimeError, match=rf"trial {trial_id} process died \(exit status 1\) before writing"):
            execute(TrialSpec.from_dict(plan.spec(trial_id)), output, RunSettings(timeout=60))
        assert "SystemExit: 3" in capfd.readouterr().err and not Path(output).exists()
    else:
        record = execute(TrialSpec.from_dict(plan.spec(trial_id)), output, RunSettings(timeout=60))
        X, y = np.load(f"{plan.data_dir}/X.npy"), np.load(f"{plan.data_dir}/y.npy")
        train, test = load_splits(plan.splits_path)[1]
        knn = KNeighborsClassifier(n_neighbors=3).fit(X[train], y[train])
        assert record.test_scores == {"accuracy": knn.score(X[test], y[test])}
        assert [w["category"] for w in record.warnings] == ["ConvergenceWarning"]
