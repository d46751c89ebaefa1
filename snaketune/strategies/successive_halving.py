"""Successive halving: one bracket of scikit-learn's ``HalvingRandomSearchCV`` rungs, on the
Hyperband machinery (slots, promotion, columns, selection)."""

from __future__ import annotations

from snaketune.strategies.hyperband import Hyperband


class SuccessiveHalving(Hyperband):
    kind = "successive_halving"

    @classmethod
    def schedule(cls, spec: dict):
        from snaketune.search.hyperband import successive_halving_schedule

        return successive_halving_schedule(
            spec["n_candidates"],
            spec.get("factor", 3),
            spec.get("min_resources") or 1,
            spec.get("max_resources"),
            spec.get("resource", "n_samples"),
            kind=cls.kind,
        )

    @classmethod
    def search_note(cls, spec) -> str:
        return (
            f"Successive halving: {spec.get('n_candidates')} candidates, factor {spec.get('factor', 3)} "
            f"(scikit-learn's HalvingRandomSearchCV rungs)."
        )
