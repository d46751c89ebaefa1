"""The plan of nested cross-validation: the whole search again inside every outer training fold.

``nested: {kind, n_splits, ...}`` (the splitters of ``cv``) splits the study's training rows into
outer folds. Outer fold ``o`` gets its own inner splits (the ``cv`` scheme applied to its training
rows only) and so its own ``cv_key``: every inner trial is an ordinary trial whose content hash
includes the outer fold, stored in ``nested/trials/``. The inner winner of each outer fold is
refit on the outer training rows and scored on the outer test rows, which is what
``cross_validate(GridSearchCV(estimator, grid, cv=inner), X, y, cv=outer)`` computes.
Cost: outer folds × inner folds × candidates trials (plus one refit per outer fold).
"""

from __future__ import annotations

from dataclasses import dataclass

from snaketune.base.jsonutil import digest
from snaketune.base.splits import n_folds
from snaketune.search.plan import Plan, make_config_keys


@dataclass
class NestedPlan:
    """Outer folds of a study and, for each, the plan of its inner search."""

    out: str
    outer_key: str
    inner: list[Plan]

    @property
    def n_outer(self) -> int:
        return len(self.inner)

    @property
    def outer_splits_path(self) -> str:
        return f"{self.out}/splits/outer-{self.outer_key}.npz"

    def outer_result_path(self, o: int) -> str:
        """The result of outer fold ``o``: named by its inner cv_key, so it changes with it."""
        return f"{self.out}/outer/{o}-{self.inner[o].cv_key}.json"

    @property
    def outer_result_paths(self) -> list[str]:
        return [self.outer_result_path(o) for o in range(self.n_outer)]

    @property
    def trial_paths(self) -> list[str]:
        return [p for plan in self.inner for p in plan.trial_paths]

    def plan_of(self, trial_id: str) -> Plan:
        """The inner plan that holds ``trial_id``."""
        key = trial_id.rsplit("_", 1)[0]
        if not hasattr(self, "_owner"):
            self._owner = {k: plan for plan in self.inner for k in plan.config_keys}
        return self._owner[key]

    @property
    def n_trials(self) -> int:
        return sum(len(plan.config_keys) * plan.n_folds for plan in self.inner)

    def summary(self) -> str:
        """What nested CV costs, in one line (printed when Snakemake starts)."""
        plan = self.inner[0]
        return (
            f"nested CV: {self.n_outer} outer folds x {plan.n_folds} inner folds x {len(plan.config_keys)} "
            f"candidates = {self.n_trials} inner trials, plus {self.n_outer} outer refits"
        )


def make_nested_plan(config: dict, main: Plan) -> NestedPlan | None:
    """The nested plan of a validated config, or None without ``nested``.

    Candidates, estimator, data and scoring are the study's (``main``); only the splits differ.
    """
    nested = config.get("nested")
    if not nested:
        return None
    out = f"{main.out}/nested"
    outer_key = digest({"data": main.data_key, "nested": dict(nested, classifier=main.classifier)})
    inner = []
    for o in range(n_folds(nested)):
        # The outer fold is part of the inner CV's identity, so of every inner trial's name.
        cv_key = digest({"data": main.data_key, "cv": dict(config["cv"], classifier=main.classifier),
                         "outer": outer_key, "outer_fold": o})  # fmt: skip
        base = dict(main.trial_spec_base, splits=f"{out}/splits/{cv_key}.npz")
        keys = make_config_keys(config, main.data_key, cv_key, main.candidates)
        inner.append(
            Plan(out, main.data_key, cv_key, main.n_folds, main.candidates, keys, base, main.classifier, main.task)
        )
    return NestedPlan(out, outer_key, inner)


def nested_problems(config: dict) -> list[str]:
    """What the schema cannot say: nested CV runs grid and random searches only."""
    nested = config.get("nested")
    if nested and not {"grid", "random"} & set(config["search"]):
        (kind,) = config["search"]
        return [f"nested: works with grid and random search, not {kind} (run the search without nested)"]
    return []


def nested_split_problems(config: dict, y, classifier: bool) -> list[str]:
    """Whether the outer scheme splits ``y`` and the ``cv`` scheme splits every outer training
    fold, before any trial runs (a splitter's warning, e.g. a class smaller than n_splits, counts)."""
    import warnings

    from snaketune.base.splits import compute_splits

    nested = config.get("nested")
    if not nested:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            outer = compute_splits(nested, y, classifier)
        except (ValueError, Warning) as exc:
            return [f"nested: cannot split the training rows: {' '.join(str(exc).split())}"]
        for o, (train, _) in enumerate(outer):
            try:
                compute_splits(config["cv"], y[train], classifier)
            except (ValueError, Warning) as exc:
                return [
                    f"nested: the cv scheme cannot split outer fold {o}'s {len(train)} training rows: "
                    f"{' '.join(str(exc).split())}"
                ]
    return []
