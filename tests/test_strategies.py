"""The strategy protocol (snaketune/strategies/), checked once for every registered strategy,
without Snakemake: the registry agrees with the schema, and each strategy's plan, rows, rule files
and plan summary agree with each other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from snaketune.config.load import load_config
from snaketune.search.plan import make_plan
from snaketune.strategies.registry import STRATEGIES, strategy_class, strategy_for, strategy_of_plan
from tests.conftest import REPO

SPACE = {"alpha": {"loguniform": [1e-5, 1e-1]}, "hidden_layer_sizes": [[4], [8]]}
SEARCHES = {
    "grid": {"alpha": [1e-4, 1e-3], "hidden_layer_sizes": [[4], [8]]},
    "random": {"n_iter": 3, "params": SPACE},
    "hyperband": {"max_iter": 9, "params": SPACE},
    "successive_halving": {"n_candidates": 4, "resource": "partial_fit", "params": SPACE},
    "optuna": {"n_trials": 4, "batch_size": 2, "params": {"alpha": {"loguniform": [1e-5, 1e-1]}}},
    "bohb": {"max_iter": 9, "params": SPACE},
}


def config_for(kind: str) -> dict:
    raw = {
        "study": f"s-{kind.replace('_', '-')}",
        "data": {"generator": "make_classification", "params": {"n_samples": 60, "random_state": 0}},
        "estimator": {"class": "sklearn.neural_network.MLPClassifier"},
        "search": {kind: SEARCHES[kind]},
        "cv": {"kind": "stratified", "n_splits": 2},
    }
    return load_config(raw, Path("."), check_data=False)


def test_the_registry_holds_every_kind_the_schema_accepts():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    assert set(STRATEGIES) == set(schema["properties"]["search"]["properties"]) == set(SEARCHES)
    assert all(cls.kind == kind for kind, cls in STRATEGIES.items())
    with pytest.raises(ValueError, match="search: unknown kind 'tpe'"):
        strategy_class({"search": {"tpe": {}}})


@pytest.mark.parametrize("kind", sorted(SEARCHES))
def test_every_strategy_keeps_the_protocol(kind):
    config = config_for(kind)
    cls = strategy_class(config)
    plan = make_plan(config, candidates=None if cls.expands_space else [])
    strategy = strategy_for(config, plan)
    rows = strategy.rows()
    # Rows partition the trial files; every row has one trial per fold.
    assert sorted(p for row in rows for p in row) == sorted(strategy.trial_paths)
    assert len(set(strategy.trial_paths)) == len(strategy.trial_paths) > 0
    assert {len(row) for row in rows} == {strategy.n_folds} and strategy.n_configs == len(rows)
    # Aggregation finds the strategy and the same rows from the JSON plan summary alone.
    summary = json.loads(json.dumps(dict(strategy.plan_summary(), strategy=kind)))
    assert strategy_of_plan(summary) is cls
    assert cls.row_trial_ids(summary) == [[Path(p).stem for p in row] for row in rows]
    # Its rule files exist; its side outputs have a path each; it says what it is.
    assert all((REPO / "workflow/rules" / name).is_file() for name in cls.rule_files)
    assert len(strategy.side_output_paths()) == len(cls.side_outputs)
    assert isinstance(cls.search_note(config["search"][kind]), str)
    assert (strategy.refit_budget() is not None) == cls.budgeted
    report, text = strategy.plan_report()
    assert json.dumps(report) and text


def test_bohb_uses_the_largest_budget_with_enough_points():
    from snaketune.strategies.bohb import model_budget

    by_units = {1: [({}, 0.5)] * 9, 3: [({}, 0.6)] * 4, 9: [({}, 0.7)]}
    assert model_budget(by_units, 5) == 1
    assert model_budget(by_units, 4) == 3
    assert model_budget(by_units, 1) == 9
    assert model_budget(by_units, 10) is None


def test_no_module_outside_strategies_names_a_kind():
    """Outside snaketune/strategies/ the code asks the strategy object; a kind named in code (not
    in a docstring) is a branch on the kind. grid and random are left out: they are also words
    the plots use for a grid of cells and a random stream."""
    import ast

    kinds = set(STRATEGIES) - {"grid", "random"}
    found = {}
    for path in sorted((REPO / "snaketune").rglob("*.py")):
        if "strategies" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        named = [
            n.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and id(n) not in docstrings and isinstance(n.value, str) and n.value in kinds
        ]
        if named:
            found[str(path.relative_to(REPO))] = named
    assert found == {}
