"""Schedules of adaptive searches: Hyperband brackets and successive-halving rungs.

A schedule says, before anything runs, how many models each bracket starts, how many survive
to each rung and how many resource *units* a model has received when it is scored in a rung.
It depends on the config alone (no data), so Snakemake can build a static DAG from it and
``python -m snaketune plan config.yaml`` prints it.

Hyperband follows Li et al. (2018), Algorithm 1, as dask-ml's ``HyperbandSearchCV`` runs it:
with ``R = max_iter`` and ``eta = aggressiveness``,

* ``s_max`` is the largest integer with ``eta**s_max <= R``;
* bracket ``s`` (``s_max`` down to 0) starts ``n = ceil((s_max + 1) * eta**s / (s + 1))`` models
  with ``r = R // eta**s`` units each;
* its rung ``i`` (0..s) holds ``n_i = n // eta**i`` models trained to ``r_i = r * eta**i`` units,
  and the best ``n_{i+1}`` of them are promoted.

A model's units are those of the last rung it reached; summed over all models they give dask-ml's
``metadata["partial_fit_calls"]`` (5721 for ``max_iter=299, aggressiveness=4``; 1581 for the
defaults 81 and 3).

Where this plan differs from dask-ml's: everything is integer arithmetic. dask-ml computes
``s_max = floor(log(R, eta))`` in floating point, and ``math.log(243, 3)`` is
``4.999999999999999``, so for ``R = eta**k`` with some ``k`` (243 = 3**5, 125 = 5**3, ...)
dask-ml runs one bracket fewer than the algorithm asks for. We use the exact integer logarithm,
so e.g. ``max_iter=243, aggressiveness=3`` has 6 brackets here and 5 in dask-ml. Likewise
``r = int(R * eta**-s)`` and ``n_i = floor(n * eta**-i)`` are computed as exact integer divisions
(the floating-point forms can land just below an integer). For every ``(R, eta)`` where the
float forms are exact the two plans are identical.

Successive halving follows scikit-learn's ``HalvingRandomSearchCV`` (``aggressive_elimination``
off): ``n_candidates`` models start with ``min_resources`` units; each rung keeps
``ceil(n / factor)`` models and multiplies the units by ``factor`` (capped at ``max_resources``);
the number of rungs is ``min(1 + ilog(n_candidates), 1 + ilog(max_resources // min_resources))``,
again with exact integer logarithms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "Rung",
    "Bracket",
    "Schedule",
    "ilog",
    "hyperband_schedule",
    "successive_halving_schedule",
    "dask_ml_bracket_count",
]


def ilog(x: int, base: int) -> int:
    """Exact integer logarithm: the largest ``k >= 0`` with ``base**k <= x``.

    Parameters
    ----------
    x : int
        A positive integer.
    base : int
        An integer >= 2.

    Returns
    -------
    int
        ``floor(log(x, base))`` computed without floating point.

    Examples
    --------
    >>> ilog(243, 3), ilog(242, 3), ilog(1, 3)
    (5, 4, 0)
    """
    if x < 1 or base < 2:
        raise ValueError(f"ilog needs x >= 1 and base >= 2 (got x={x}, base={base})")
    k, power = 0, base
    while power <= x:
        k += 1
        power *= base
    return k


def dask_ml_bracket_count(max_iter: int, aggressiveness: int) -> int:
    """How many brackets dask-ml's ``HyperbandSearchCV`` runs (its floating-point logarithm)."""
    return math.floor(math.log(max_iter, aggressiveness)) + 1


@dataclass(frozen=True)
class Rung:
    """One rung of a bracket.

    Attributes
    ----------
    index : int
        Position in the bracket (0 = first).
    n_models : int
        Models evaluated in this rung (= slots of the static DAG).
    units : int
        Resource units a model has received in total when it is scored here.
    """

    index: int
    n_models: int
    units: int


@dataclass(frozen=True)
class Bracket:
    """A successive-halving run: rungs of decreasing size and increasing resource."""

    id: int
    rungs: tuple[Rung, ...]

    @property
    def n_models(self) -> int:
        return self.rungs[0].n_models

    def survivors(self, rung: int) -> int:
        """Models promoted out of rung ``rung`` (0 for the last rung)."""
        return self.rungs[rung + 1].n_models if rung + 1 < len(self.rungs) else 0

    @property
    def units(self) -> int:
        """Sum over models of the units of the last rung each reaches (dask-ml's
        ``partial_fit_calls`` of the bracket)."""
        return sum((r.n_models - self.survivors(r.index)) * r.units for r in self.rungs)

    @property
    def units_from_scratch(self) -> int:
        """Units trained when no model continues from its previous rung (resource n_samples):
        every rung refits on ``units`` worth of rows."""
        return sum(r.n_models * r.units for r in self.rungs)

    @property
    def n_evaluations(self) -> int:
        """(model, rung) evaluations = Snakemake evaluation jobs of this bracket."""
        return sum(r.n_models for r in self.rungs)


@dataclass(frozen=True)
class Schedule:
    """All brackets of an adaptive search."""

    kind: str  # the strategy's kind (search/<kind> in the config)
    brackets: tuple[Bracket, ...]
    resource: str = "partial_fit"
    settings: tuple = ()

    @property
    def n_models(self) -> int:
        return sum(b.n_models for b in self.brackets)

    @property
    def units(self) -> int:
        return sum(b.units for b in self.brackets)

    @property
    def units_trained(self) -> int:
        """Units actually spent: equal to :attr:`units` for partial_fit (models continue),
        larger for n_samples (each rung fits from scratch)."""
        if self.resource == "partial_fit":
            return self.units
        return sum(b.units_from_scratch for b in self.brackets)

    @property
    def n_evaluations(self) -> int:
        return sum(b.n_evaluations for b in self.brackets)

    @property
    def n_promotions(self) -> int:
        return sum(len(b.rungs) - 1 for b in self.brackets)

    def bracket(self, bracket_id: int) -> Bracket:
        for b in self.brackets:
            if b.id == bracket_id:
                return b
        raise KeyError(bracket_id)

    def to_dict(self) -> dict:
        """JSON-able metadata (what best.json records as ``plan``)."""
        return {
            "kind": self.kind,
            "resource": self.resource,
            "settings": dict(self.settings),
            "n_brackets": len(self.brackets),
            "n_models": self.n_models,
            "units": self.units,
            "units_trained": self.units_trained,
            "n_evaluations": self.n_evaluations,
            "brackets": [
                {
                    "bracket": b.id,
                    "n_models": b.n_models,
                    "units": b.units,
                    "rungs": [
                        {"rung": r.index, "n_models": r.n_models, "units": r.units, "promoted": b.survivors(r.index)}
                        for r in b.rungs
                    ],
                }
                for b in self.brackets
            ],
        }

    def table(self) -> str:
        """Human-readable plan: per bracket the models and units of every rung, then totals."""
        unit = "partial_fit calls" if self.resource == "partial_fit" else "units of rows"
        lines = [f"{self.kind} plan ({', '.join(f'{k}={v}' for k, v in self.settings)}), resource {self.resource}"]
        lines.append(f"{'bracket':>7} {'rung':>4} {'models':>6} {'units/model':>11} {'promoted':>8}")
        for b in self.brackets:
            for r in b.rungs:
                lines.append(f"{b.id:>7} {r.index:>4} {r.n_models:>6} {r.units:>11} {b.survivors(r.index):>8}")
            lines.append(f"{'':>7} {'':>4} {b.n_models:>6} models, {b.units} {unit}")
        lines.append(
            f"total: {len(self.brackets)} brackets, {self.n_models} models, {self.units} {unit} "
            f"(dask-ml's metadata counting), {self.units_trained} units trained, "
            f"{self.n_evaluations} evaluation jobs, {self.n_promotions} promotion jobs"
        )
        if {"max_iter", "aggressiveness"} <= dict(self.settings).keys():  # Hyperband's brackets
            s = dict(self.settings)
            theirs = dask_ml_bracket_count(s["max_iter"], s["aggressiveness"])
            if theirs != len(self.brackets):
                lines.append(
                    f"note: dask-ml would run {theirs} brackets (floating-point log({s['max_iter']}, "
                    f"{s['aggressiveness']})); this plan uses the exact integer logarithm"
                )
        return "\n".join(lines)


def hyperband_schedule(
    max_iter: int, aggressiveness: int = 3, resource: str = "partial_fit", kind: str = "Hyperband"
) -> Schedule:
    """Brackets and rungs of Hyperband (Li et al., Algorithm 1; dask-ml's plan, exact arithmetic).

    Parameters
    ----------
    max_iter : int
        ``R``: the most units any model receives.
    aggressiveness : int
        ``eta``: a rung keeps ``1/eta`` of its models and trains them ``eta`` times longer.
    resource : {"partial_fit", "n_samples"}
        What a unit is (recorded; the schedule itself does not depend on it).
    kind : str
        The label of the schedule (the strategy's kind: its name in best.json and the table).

    Returns
    -------
    Schedule
        Brackets from the most adaptive (``s_max``, many models, few units) to bracket 0.
    """
    R, eta = int(max_iter), int(aggressiveness)
    if R < 1 or eta < 2:
        raise ValueError(f"hyperband needs max_iter >= 1 and aggressiveness >= 2 (got {R}, {eta})")
    s_max = ilog(R, eta)
    brackets = []
    for s in range(s_max, -1, -1):
        n = -(-((s_max + 1) * eta**s) // (s + 1))  # ceil, exact
        r = R // eta**s
        rungs = tuple(Rung(i, n // eta**i, r * eta**i) for i in range(s + 1))
        brackets.append(Bracket(s, rungs))
    settings = (("max_iter", R), ("aggressiveness", eta))
    return Schedule(kind, tuple(brackets), resource, settings)


def successive_halving_schedule(
    n_candidates: int,
    factor: int = 3,
    min_resources: int = 1,
    max_resources: int | None = None,
    resource: str = "n_samples",
    kind: str = "successive halving",
) -> Schedule:
    """One bracket with scikit-learn's ``HalvingRandomSearchCV`` rungs.

    Parameters
    ----------
    n_candidates : int
        Models sampled for the first rung.
    factor : int
        Each rung keeps ``ceil(n / factor)`` models and gives them ``factor`` times the units.
    min_resources : int
        Units of the first rung.
    max_resources : int, optional
        Cap on units; by default ``min_resources * factor**(n_required - 1)`` so the last rung,
        the one with fewer than ``factor`` models, is reached.

    Returns
    -------
    Schedule
        A single bracket with id 0.
    """
    if n_candidates < 1 or factor < 2 or min_resources < 1:
        raise ValueError("successive halving needs n_candidates >= 1, factor >= 2, min_resources >= 1")
    n_required = 1 + ilog(n_candidates, factor)
    if max_resources is None:
        max_resources = min_resources * factor ** (n_required - 1)
    if max_resources < min_resources:
        raise ValueError(f"max_resources ({max_resources}) is below min_resources ({min_resources})")
    n_possible = 1 + ilog(max_resources // min_resources, factor)
    n_rungs = min(n_required, n_possible)
    rungs, n = [], n_candidates
    for i in range(n_rungs):
        rungs.append(Rung(i, n, min(min_resources * factor**i, max_resources)))
        n = -(-n // factor)
    settings = (
        ("n_candidates", n_candidates),
        ("factor", factor),
        ("min_resources", min_resources),
        ("max_resources", max_resources),
    )
    return Schedule(kind, (Bracket(0, tuple(rungs)),), resource, settings)
