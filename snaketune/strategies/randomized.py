"""Random search: ``n_iter`` configurations from scikit-learn's ``ParameterSampler``."""

from __future__ import annotations

from snaketune.strategies.base import Strategy


class RandomSearch(Strategy):
    kind = "random"
    sampled = True

    @classmethod
    def search_note(cls, spec) -> str:
        return (
            f"Random search: {spec.get('n_iter')} configurations sampled with seed {spec.get('seed', 0)} "
            "(scikit-learn's ParameterSampler)."
        )
