"""The comparison with the best (issue 13, part 1): the corrected t-test and Bayesian posterior,
computed here by hand from the formulas on the fold scores of scikit-learn's example
"Statistical comparison of models using grid search", against snaketune's implementation and
against the leaderboard that ``write_leaderboard`` writes from trial files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest


@pytest.fixture(scope="module")
def sklearn_example():
    """The example's own study: SVC kernels on make_moons, 10 x 10 repeated stratified CV, ROC AUC."""
    from sklearn.datasets import make_moons
    from sklearn.model_selection import GridSearchCV, RepeatedStratifiedKFold
    from sklearn.svm import SVC

    X, y = make_moons(noise=0.352, random_state=1, n_samples=100)
    grid = [{"kernel": ["linear"]}, {"kernel": ["poly"], "degree": [2, 3]}, {"kernel": ["rbf"]}]
    cv = RepeatedStratifiedKFold(n_splits=10, n_repeats=10, random_state=0)
    search = GridSearchCV(SVC(random_state=0), grid, scoring="roc_auc", cv=cv).fit(X, y)
    r = search.cv_results_
    scores = np.column_stack([r[f"split{k}_test_score"] for k in range(100)])
    train, test = next(cv.split(X, y))
    return scores, r["rank_test_score"], len(train), len(test), r["params"]


def by_hand(best, other, n_train, n_test, rope):
    """Nadeau & Bengio's corrected t-test and the Student-t posterior, written out longhand."""
    from scipy import stats

    d = [b - o for b, o in zip(best, other, strict=True)]
    k = len(d)
    mean = sum(d) / k
    var = sum((x - mean) ** 2 for x in d) / (k - 1)
    scale = math.sqrt((1 / k + n_test / n_train) * var)
    t = mean / scale
    p = 1 - stats.t.cdf(t, df=k - 1)
    # Posterior of the mean difference: location mean, scale `scale`, k - 1 degrees of freedom.
    cdf = lambda x: stats.t.cdf((x - mean) / scale, df=k - 1)  # noqa: E731
    return t, p, 1 - cdf(0.0), cdf(rope) - cdf(-rope)


def test_corrected_ttest_and_posterior_by_hand_on_the_sklearn_example(sklearn_example):
    from snaketune.results.compare import compare, compare_with_best

    scores, ranks, n_train, n_test, params = sklearn_example
    order = np.argsort(ranks, kind="stable")
    best, second = int(order[0]), int(order[1])
    assert params[best] == {"kernel": "rbf"} and params[second] == {"kernel": "linear"}  # as in the example
    t, p, better, equivalent = by_hand(scores[best], scores[second], n_train, n_test, rope=0.01)
    c = compare(scores[best], scores[second], n_train=n_train, n_test=n_test, rope=0.01)
    assert c.t_stat == pytest.approx(t, rel=1e-12)
    assert c.p_value == pytest.approx(p, rel=1e-9)
    assert c.prob_best_better == pytest.approx(better, rel=1e-9)
    assert c.prob_equivalent == pytest.approx(equivalent, rel=1e-9)
    # The example's printed figures (after scikit-learn PR #19966): t 0.750, p 0.227, P(rbf better) 0.773.
    assert (round(t, 3), round(p, 3), round(better, 3)) == (0.750, 0.227, 0.773)
    # The uncorrected test the example warns about would call the difference significant.
    d = scores[best] - scores[second]
    naive = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
    assert naive > 2.5 and p > 0.05

    columns = compare_with_best(scores, best, n_train=n_train, n_test=n_test, rope=0.01)
    assert math.isnan(columns["p_vs_best"][best])
    for i in range(len(scores)):
        if i == best:
            continue
        expected = by_hand(scores[best], scores[i], n_train, n_test, rope=0.01)
        assert columns["p_vs_best"][i] == pytest.approx(expected[1], rel=1e-9, abs=1e-300)
        assert columns["prob_best_better"][i] == pytest.approx(expected[2], rel=1e-9)
        assert columns["prob_equivalent"][i] == pytest.approx(expected[3], rel=1e-9, abs=1e-300)


def test_degenerate_comparisons():
    from snaketune.results.compare import compare, summarize

    same = compare(np.ones(5), np.ones(5), n_train=120, n_test=30, rope=0.01)
    assert (same.p_value, same.prob_best_better, same.prob_equivalent) == (1.0, 0.0, 1.0)
    shifted = compare(np.ones(5), np.ones(5) - 0.05, n_train=120, n_test=30, rope=0.01)
    assert (shifted.p_value, shifted.prob_best_better, shifted.prob_equivalent) == (0.0, 1.0, 0.0)
    failed = compare(np.ones(5), np.array([1, 1, np.nan, 1, 1.0]), n_train=120, n_test=30, rope=0.01)
    assert math.isnan(failed.p_value)
    s = summarize(np.array([np.nan, 0.3, 0.01, 0.05]), metric="accuracy", n_folds=5, n_train=120, n_test=30,
                  alpha=0.05, rope=0.01)  # fmt: skip
    assert s.n_indistinguishable == 2 and s.n_compared == 3
    assert s.sentence.startswith("2 configurations are statistically indistinguishable from the best")
    assert "only 5 folds" in s.warning
    assert (
        summarize(np.array([np.nan]), metric="a", n_folds=10, n_train=1, n_test=1, alpha=0.05, rope=0).warning is None
    )


def _leaderboard_of(folder, scores, params, n_train, n_test, metric, report) -> tuple[list[str], str]:
    """Trial files of ``scores`` (configurations x folds), then ``write_leaderboard`` on them."""
    from snaketune.base.jsonutil import write_json_atomic
    from snaketune.results.leaderboard import write_leaderboard

    keys = [f"{i:012x}" for i in range(len(scores))]
    for i, key in enumerate(keys):
        for k in range(scores.shape[1]):
            write_json_atomic(
                folder / "trials" / f"{key}_{k}.json",
                {"trial_id": f"{key}_{k}", "config_key": key, "fold": k, "params": params[i], "status": "ok",
                 "test_scores": {metric: scores[i, k]}, "fit_time": 0.1, "score_time": 0.01,
                 "n_train": n_train, "n_test": n_test, "end": f"2026-01-01T00:00:{i:02d}"},
            )  # fmt: skip
    config = {"scoring": [metric], "refit": metric, "error_score": "nan", "return_train_score": False,
              "report": {"top_n": 20, "alpha": 0.05, **report}}  # fmt: skip
    plan = {"candidates": params, "config_keys": keys, "n_folds": scores.shape[1]}
    outputs = [str(folder / n) for n in ("leaderboard.csv", "leaderboard.md", "best.json")]
    return outputs, write_leaderboard(plan=plan, config=config, outputs=outputs)


def test_leaderboard_columns_from_trial_files(tmp_path, sklearn_example):
    """write_leaderboard adds the three columns, marks the table and says the sentence."""

    scores, ranks, n_train, n_test, params = sklearn_example
    scores = scores[:, :20]  # two repeats of 10 folds, as trial files
    outputs, log = _leaderboard_of(tmp_path, scores, params, n_train, n_test, "roc_auc", {"rope": 0.01})
    import pandas as pd

    frame = pd.read_csv(outputs[0])
    best = int(np.argmax(scores.mean(axis=1)))
    for i in range(len(scores)):
        if i == best:
            assert frame["p_vs_best"].isna()[i]
            continue
        _, p, better, equivalent = by_hand(scores[best], scores[i], n_train, n_test, rope=0.01)
        assert frame["p_vs_best"][i] == pytest.approx(p, rel=1e-9, abs=1e-300)
        assert frame["prob_best_better"][i] == pytest.approx(better, rel=1e-9)
        assert frame["prob_equivalent"][i] == pytest.approx(equivalent, rel=1e-9, abs=1e-300)
    same = int((frame["p_vs_best"] >= 0.05).sum())
    summary = json.loads((tmp_path / "best.json").read_text())["comparison"]
    assert summary["n_indistinguishable"] == same and summary["n_folds"] == 20 and "warning" not in summary
    noun = "configuration is" if same == 1 else "configurations are"
    markdown = (tmp_path / "leaderboard.md").read_text()
    assert f"{same} {noun} statistically indistinguishable from the best" in markdown
    assert markdown.count("≈ p=") == same and "| best " in markdown
    assert summary["sentence"] in log


def test_adaptive_rows_compare_among_the_final_rungs(sklearn_example):
    from snaketune.results.compare import compare, compare_with_best

    scores, _, n_train, n_test, _ = sklearn_example
    final = np.array([True, False, True, True])
    columns = compare_with_best(scores, 3, n_train=n_train, n_test=n_test, rope=0.02, rows=final)
    assert np.isnan(columns["p_vs_best"][[1, 3]]).all()
    expected = compare(scores[3], scores[0], n_train=n_train, n_test=n_test, rope=0.02)
    assert columns["prob_equivalent"][0] == expected.prob_equivalent


def test_ranks_equal_scipys_rankdata_min_with_ties_and_nan():
    """``rank_scores`` (by hand, no scipy.stats import) is sklearn's ``rankdata(-means, "min")``
    with NaN ranked last, on scores with ties."""
    from scipy.stats import rankdata

    from snaketune.results.aggregate import rank_scores

    rng = np.random.default_rng(0)
    for _ in range(50):
        means = rng.choice([0.5, 0.75, 0.8, 0.9, 0.9, np.nan], size=rng.integers(1, 12))
        if np.isnan(means).all():
            assert (rank_scores(means) == 1).all()
            continue
        filled = np.where(np.isnan(means), np.nanmin(means) - 1, means)
        np.testing.assert_array_equal(rank_scores(means), rankdata(-filled, method="min"))


def advised_section(warning: str) -> dict:
    """The ``cv: {...}`` a warning advises, read as YAML (as a user would paste it)."""
    import re

    import yaml

    return yaml.safe_load(re.search(r"cv: (\{[^}]*\})", warning).group(1))


@pytest.mark.parametrize(
    ("study", "kind"),
    [
        ({"data": {"loader": "iris"}, "estimator": {"class": "sklearn.neighbors.KNeighborsClassifier"}}, None),
        ({"data": {"loader": "diabetes"}, "estimator": {"class": "sklearn.linear_model.Ridge"}}, None),
        (
            {"data": {"loader": "diabetes"}, "estimator": {"class": "sklearn.linear_model.Ridge"}},
            {"kind": "shuffle_split", "n_splits": 5},
        ),
        (
            {
                "data": {"csv": "grouped.csv", "target": "y", "groups": "patient"},
                "estimator": {"class": "sklearn.linear_model.LogisticRegression"},
            },
            {"kind": "group_kfold", "n_splits": 4},
        ),
        (
            {"data": {"loader": "diabetes"}, "estimator": {"class": "sklearn.linear_model.Ridge"}},
            {"kind": "time_series", "n_splits": 4},
        ),
    ],
    ids=["classifier", "regressor", "regressor-shuffle-split", "grouped", "time-series"],
)
def test_advised_cv_passes_the_checker(tmp_path, study, kind):
    """The warning's advice for too few folds, substituted into the study's config, passes the
    real checker (repeated stratified CV is refused for a regressor and ignores groups)."""
    from snaketune.config.load import load_config
    from snaketune.results.compare import summarize
    from snaketune.search.plan import make_plan

    rows = "".join(f"{i % 7 * 0.5},{i % 3},{i % 2},p{i % 10}\n" for i in range(80))
    (tmp_path / "grouped.csv").write_text("a,b,y,patient\n" + rows)
    search = {"grid": {"alpha": [1.0]}} if "Ridge" in study["estimator"]["class"] else {"grid": {"C": [1.0]}}
    search = {"grid": {"n_neighbors": [1]}} if "KNeighbors" in study["estimator"]["class"] else search
    config = load_config(dict(study, study="s", search=search, **({"cv": kind} if kind else {})), tmp_path)
    plan = make_plan(config, tmp_path)  # the classifier flag aggregation gets (plan_summary)
    warning = summarize(np.array([np.nan, 0.3]), metric=config["refit"], n_folds=config["cv"]["n_splits"],
                        n_train=100, n_test=20, alpha=0.05, rope=0.01, cv=config["cv"],
                        classifier=plan.classifier).warning  # fmt: skip
    section = advised_section(warning)
    assert section != (kind or {}) and section["kind"] != "auto"
    if study["estimator"]["class"].endswith("Ridge") or "groups" in study["data"]:
        assert "stratified" not in section["kind"]
    load_config(dict(config, cv=section), tmp_path)  # raises ConfigError if the checker refuses it


@pytest.mark.parametrize("report", [{}, {"rope": 0.01}], ids=["default", "set"])
def test_default_rope_scales_with_an_error_in_the_targets_units(tmp_path, sklearn_example, report):
    """An RMSE of about 560 (neg_root_mean_squared_error): without report.rope the region of
    practical equivalence is 1 % of the best's |mean score|, 5.64, not 0.01 (which no difference
    in dollars could fall within), and the sentence says so; a ROPE set in the config is kept."""
    import pandas as pd

    scores, _, n_train, n_test, params = sklearn_example
    scores = -550.0 - 200.0 * (1 - scores[:, :10])  # same ranking, in "dollars", best near -550
    outputs, log = _leaderboard_of(tmp_path, scores, params, n_train, n_test, "neg_root_mean_squared_error", report)
    comparison = json.loads((tmp_path / "best.json").read_text())["comparison"]
    best = int(np.argmax(scores.mean(axis=1)))
    rope = report.get("rope", round(0.01 * abs(scores[best].mean()), 2))  # 5.64 for a best of -563.6
    assert 550 < abs(scores[best].mean()) < 600 and comparison["rope"] == rope
    frame = pd.read_csv(outputs[0])
    for i in range(len(scores)):
        if i != best:
            expected = by_hand(scores[best], scores[i], n_train, n_test, rope=rope)[3]
            assert frame["prob_equivalent"][i] == pytest.approx(expected, rel=1e-9, abs=1e-300)
    said = f"Region of practical equivalence: ±{rope:g} (1% of the best's mean RMSE; report.rope sets it)"
    assert (said in comparison["sentence"] and said in log) == (not report)


def test_a_loss_is_shown_as_a_loss_in_tables_and_sentence(tmp_path, sklearn_example):
    """RMSE stored as scikit-learn stores it (``neg_root_mean_squared_error``, about -560): the
    leaderboard.csv and best.json keep the negated values; leaderboard.md, the log's top-5 table
    and the comparison sentence say "RMSE", positive, the best (the lowest) first."""
    import pandas as pd

    scores, _, n_train, n_test, params = sklearn_example
    scores = -550.0 - 200.0 * (1 - scores[:, :10])
    refit = "neg_root_mean_squared_error"
    outputs, log = _leaderboard_of(tmp_path, scores, params, n_train, n_test, refit, {})
    frame = pd.read_csv(outputs[0])
    assert np.allclose(frame[f"mean_test_{refit}"], scores.mean(axis=1))  # the csv: scikit-learn's signs
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["mean_test_score"] == pytest.approx(scores.mean(axis=1).max()) and best["mean_test_score"] < 0
    markdown = (tmp_path / "leaderboard.md").read_text()
    for text in (markdown, log):
        assert "neg_root_mean_squared_error" not in text
        assert "by RMSE; lower is better)" in text if text is markdown else "by RMSE (lower is better):" in text
        header = next(line for line in text.splitlines() if line.startswith("| rank"))
        assert [c.strip() for c in header.strip("|").split("|")][1:3] == ["mean RMSE", "std RMSE"]
        rows = [line for line in text.splitlines() if line.startswith("|") and line[2:3].isdigit()]
        shown = [float(r.strip("|").split("|")[1]) for r in rows]
        assert shown == sorted(shown) and shown[0] == pytest.approx(-best["mean_test_score"], abs=5e-5)
        assert "t-test on RMSE, alpha" in text
    assert "t-test on RMSE, alpha" in best["comparison"]["sentence"]
    assert f'"RMSE": {-best["mean_test_score"]}' in log
