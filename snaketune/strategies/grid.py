"""Grid search: every combination of the space (scikit-learn's ``ParameterGrid`` order)."""

from __future__ import annotations

from snaketune.strategies.base import Strategy


class GridSearch(Strategy):
    kind = "grid"

    @classmethod
    def search_note(cls, spec) -> str:
        return "Grid search: every combination (scikit-learn's ParameterGrid order)."
