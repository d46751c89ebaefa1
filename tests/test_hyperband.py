"""Unit tests of the adaptive-search schedule (snaketune.search.hyperband) and of promotion."""

from __future__ import annotations

import math

import numpy as np
import pytest

from snaketune.cli import main
from snaketune.search.hyperband import (
    dask_ml_bracket_count,
    hyperband_schedule,
    ilog,
    successive_halving_schedule,
)


def dask_ml_float_plan(R, eta):
    """dask-ml's own floating-point formulas (HyperbandSearchCV.metadata), written out."""
    s_max = math.floor(math.log(R, eta))
    B = (s_max + 1) * R
    out = []
    for s in reversed(range(s_max + 1)):
        n = int(math.ceil(B / R * eta**s / (s + 1)))
        r = int(R * eta**-s)
        rungs = [(math.floor(n * eta**-i), int(np.round(r * eta**i))) for i in range(s + 1)]
        out.append((s, tuple(rungs)))
    return out


@pytest.mark.parametrize(
    ("max_iter", "eta", "models", "calls"),
    [(299, 4, 378, 5721), (81, 3, 143, 1581)],
)
def test_totals_match_dask_ml_metadata(max_iter, eta, models, calls):
    schedule = hyperband_schedule(max_iter, eta)
    assert schedule.n_models == models
    assert schedule.units == calls
    meta = schedule.to_dict()
    assert meta["n_models"] == models and meta["units"] == calls
    assert sum(b["units"] for b in meta["brackets"]) == calls


def test_bracket_shapes_299_4():
    schedule = hyperband_schedule(299, 4)
    shapes = {b.id: [(r.n_models, r.units) for r in b.rungs] for b in schedule.brackets}
    assert shapes == {
        4: [(256, 1), (64, 4), (16, 16), (4, 64), (1, 256)],
        3: [(80, 4), (20, 16), (5, 64), (1, 256)],
        2: [(27, 18), (6, 72), (1, 288)],
        1: [(10, 74), (2, 296)],
        0: [(5, 299)],
    }


def test_ilog_is_exact():
    assert [ilog(x, 3) for x in (1, 2, 3, 8, 9, 26, 27, 242, 243, 244)] == [0, 0, 1, 1, 2, 2, 3, 4, 5, 5]
    for base in (2, 3, 4, 5, 7, 10):
        for k in range(0, 30):
            assert ilog(base**k, base) == k
            if k:
                assert ilog(base**k - 1, base) == k - 1
    with pytest.raises(ValueError):
        ilog(0, 3)


def test_exact_log_bracket_count_differs_from_dask_ml_at_243():
    # math.log(243, 3) == 4.999999999999999: dask-ml runs one bracket too few.
    assert math.log(243, 3) < 5
    assert dask_ml_bracket_count(243, 3) == 5
    assert len(hyperband_schedule(243, 3).brackets) == 6
    assert hyperband_schedule(243, 3).brackets[0].rungs[-1].units == 243
    assert "dask-ml would run 5 brackets" in hyperband_schedule(243, 3).table()


def test_same_plan_as_dask_ml_where_its_floats_are_exact():
    compared, differing = 0, []
    for eta in (2, 3, 4, 5):
        for R in range(1, 1000):
            if dask_ml_bracket_count(R, eta) != ilog(R, eta) + 1:
                continue
            theirs = dask_ml_float_plan(R, eta)
            ours = [(b.id, tuple((r.n_models, r.units) for r in b.rungs)) for b in hyperband_schedule(R, eta).brackets]
            if theirs == ours:
                compared += 1
            else:
                differing.append((R, eta))
                # The float forms lose an integer: int(729 * 3**-6) == 0, a rung of 0 models.
                assert any(0 in rung for _, rungs in theirs for rung in rungs)
    assert compared > 3000
    assert (729, 3) in differing


def test_every_rung_keeps_one_over_eta():
    for R, eta in [(81, 3), (299, 4), (1000, 3), (27, 2)]:
        for b in hyperband_schedule(R, eta).brackets:
            assert b.rungs[-1].units <= R
            for prev, nxt in zip(b.rungs, b.rungs[1:], strict=False):
                assert nxt.n_models == prev.n_models // eta
                assert nxt.units == prev.units * eta
            assert b.rungs[-1].n_models >= 1


def test_successive_halving_matches_sklearn():
    from sklearn.dummy import DummyClassifier
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingRandomSearchCV

    X = np.zeros((900, 1))
    y = np.arange(900) % 2
    for n_candidates, factor, min_r, max_r in [(100, 3, 10, 810), (20, 2, 30, 900), (50, 3, 20, 100)]:
        search = HalvingRandomSearchCV(
            DummyClassifier(),
            {"strategy": ["prior", "most_frequent", "stratified", "uniform"], "random_state": list(range(100))},
            n_candidates=n_candidates,
            factor=factor,
            min_resources=min_r,
            max_resources=max_r,
            cv=2,
            random_state=0,
        ).fit(X, y)
        ours = successive_halving_schedule(n_candidates, factor, min_r, max_r)
        (bracket,) = ours.brackets
        assert [r.n_models for r in bracket.rungs] == list(search.n_candidates_)
        assert [r.units for r in bracket.rungs] == list(search.n_resources_)


def test_successive_halving_default_max_resources():
    (bracket,) = successive_halving_schedule(27, 3, 2).brackets
    assert [(r.n_models, r.units) for r in bracket.rungs] == [(27, 2), (9, 6), (3, 18), (1, 54)]


def test_n_samples_counts_refits_from_scratch():
    s = hyperband_schedule(9, 3, resource="n_samples")
    assert s.units_trained == sum(r.n_models * r.units for b in s.brackets for r in b.rungs)
    assert s.units_trained > s.units == hyperband_schedule(9, 3).units_trained


def test_plan_command(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("search:\n  hyperband:\n    max_iter: 299\n    aggressiveness: 4\n    params: {alpha: [1]}\n")
    assert main(["plan", str(config)]) == 0
    out = capsys.readouterr().out
    assert "378 models, 5721 partial_fit calls" in out
    assert main(["plan", str(config), "--json"]) == 0
    assert '"units": 5721' in capsys.readouterr().out


# ------------------------------------------------------------------------------------------
# Promotion (snaketune.evaluation.slots) and budgets (snaketune.evaluation.budget)


def _slot(tmp_path, j, model_id, key, scores, status="ok"):
    """A slot's fold trial files (two folds), as the trial core writes them."""
    from snaketune.base.jsonutil import write_json_atomic

    paths = []
    for k, score in enumerate(scores):
        path = tmp_path / f"b1-r0-s{j}_{k}.json"
        write_json_atomic(
            path,
            {
                "trial_id": path.stem,
                "config_key": key,
                "fold": k,
                "params": {"alpha": 1},
                "status": status,
                "test_scores": {"accuracy": score},
                "fit_time": 0.1,
                "score_time": 0.01,
                "model_id": model_id,
                "budget": 3,
            },
        )
        paths.append(str(path))
    return paths


def test_promotion_is_deterministic_with_ties(tmp_path):
    import json

    from snaketune.evaluation.slots import promote

    rows = [
        ("b1-0", "cccc", [0.4, 0.6]),
        ("b1-1", "aaaa", [0.9, 0.9]),
        ("b1-2", "bbbb", [0.5, 0.5]),
        ("b1-3", "dddd", [None, None]),  # failed: last
        ("b1-4", "aaab", [0.6, 0.4]),
        ("b1-5", "eeee", [0.9, float("nan")]),  # a NaN fold counts as failed
    ]
    slots = [
        _slot(tmp_path, j, m, k, s, status="ok" if s[0] is not None else "error") for j, (m, k, s) in enumerate(rows)
    ]
    doc = promote(slots, 3, "accuracy", tmp_path / "promotion.json")
    assert [s["model_id"] for s in doc["survivors"]] == ["b1-1", "b1-4", "b1-2"]
    assert doc["survivors"][0]["score"] == 0.9
    assert [r["model_id"] for r in doc["ranking"]][-2:] == ["b1-3", "b1-5"]
    # The same inputs in another order promote the same models in the same order.
    doc2 = promote(list(reversed(slots)), 3, "accuracy", tmp_path / "promotion2.json")
    assert doc2["survivors"] == doc["survivors"]
    saved = json.loads((tmp_path / "promotion.json").read_text())["survivors"][0]
    assert saved["states"][1].endswith("b1-r0-s1_1.pkl") and saved["results"][0].endswith("b1-r0-s1_0.json")


def test_subsamples_are_nested_and_stratified():
    from snaketune.evaluation.budget import block, row_order

    y = np.repeat([0, 1, 2, 3], [50, 100, 150, 200])
    train = np.arange(0, 500, 1)
    order = row_order(train, y, [0, 0], stratify=True)
    assert sorted(order.tolist()) == train.tolist()
    again = row_order(train, y, [0, 0], stratify=True)
    assert (order == again).all()
    assert not (order == row_order(train, y, [1, 0], stratify=True)).all()
    # A larger rung's rows contain a smaller rung's (prefixes of one order).
    small, large = set(order[:40]), set(order[:120])
    assert small <= large
    # Every prefix holds every class about in proportion.
    counts = np.bincount(y[order[:20]], minlength=4)
    assert (counts >= 1).all() and abs(counts[3] - 8) <= 1
    # partial_fit blocks cycle through the training rows.
    assert (block(order, 0, 200) == order[:200]).all()
    assert (block(order, 2, 200) == order[400:]).all()
    assert (block(order, 3, 200) == order[:200]).all()


def test_plateau_rule_matches_dask_ml():
    from snaketune.evaluation.budget import plateau

    hist = [{"units": u, "score": s} for u, s in [(1, 0.5), (2, 0.6), (3, 0.6005), (4, 0.6008)]]
    assert plateau(hist, patience=2, tol=1e-3)  # 0.6 -> 0.6008: no gain above tol within 2 units
    assert not plateau(hist[:3], patience=2, tol=1e-4)
    assert not plateau(hist[:2], patience=2, tol=1e-3)  # 0.5 -> 0.6 improved
    assert not plateau(hist[:1], patience=2, tol=1e-3)  # not yet patience units


def test_example_config_is_valid_and_its_plan_is_documented():
    from pathlib import Path

    from snaketune.config.load import load_config, read_yaml
    from snaketune.strategies.registry import strategy_class

    repo = Path(__file__).resolve().parents[1]
    path = repo / "examples" / "mlp-circles-hyperband.yaml"
    config = load_config(read_yaml(path), repo)
    ((_kind, spec),) = config["search"].items()
    schedule = strategy_class(config).schedule(spec)
    assert (len(schedule.brackets), schedule.n_models, schedule.units) == (4, 49, 357)
    assert "49 models, 357 partial_fit calls" in path.read_text()
    assert len(config["search"]["hyperband"]["params"]) == 7
