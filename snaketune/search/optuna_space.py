"""Optuna's side of a model-based search: the config's space as Optuna distributions, the sampler.

The space is the one random search accepts (:mod:`snaketune.search.space`): a list of values is a
``CategoricalDistribution`` (shorthands ``range``/``linspace``/``logspace`` expand to lists first),
``loguniform``/``uniform`` are ``FloatDistribution`` (``log=True`` for the first) and ``randint``
is an ``IntDistribution`` (scipy's ``randint(low, high)`` excludes ``high``, so it is
``IntDistribution(low, high - 1)``). Parameters are asked in sorted name order, as scikit-learn's
``ParameterSampler`` draws them, so an objective that suggests them in that order sees the same
random stream.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.samplers import BaseSampler

# Config name -> optuna.samplers class, each built with Optuna's defaults and ``seed``.
SAMPLERS = {
    "tpe": "TPESampler",
    "gp": "GPSampler",
    "cmaes": "CmaEsSampler",
    "qmc": "QMCSampler",
    "random": "RandomSampler",
}
# Samplers whose extra package Optuna imports lazily (gp: torch is not a snaketune dependency).
NEEDS = {"gp": "torch", "cmaes": "cmaes"}
STUDY_NAME = "snaketune"
_CHOICE_TYPES = (type(None), bool, int, float, str)


def distributions(params: dict) -> dict[str, BaseDistribution]:
    """The space ``params`` (one dict of value specs) as Optuna distributions, in sorted order."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from snaketune.search.space import expand_values

    out: dict[str, BaseDistribution] = {}
    for name in sorted(params):
        spec = params[name]
        kind = next(iter(spec)) if isinstance(spec, dict) else None
        if kind in ("loguniform", "uniform"):
            low, high = spec[kind]
            out[name] = FloatDistribution(float(low), float(high), log=kind == "loguniform")
        elif kind == "randint":
            low, high = spec[kind]
            out[name] = IntDistribution(int(low), int(high) - 1)
        else:
            out[name] = CategoricalDistribution(expand_values(spec))
    return out


def space_problems(key: str, params: Any) -> list[str]:
    """Config problems Optuna would raise later: one space only, categorical choices Optuna can
    store (JSON scalars)."""
    if isinstance(params, list):
        return [f"{key}: give one space (a mapping); Optuna's samplers take one search space"]
    from snaketune.search.space import expand_values

    out = []
    for name in sorted(params):
        spec = params[name]
        if isinstance(spec, dict) and next(iter(spec)) in ("loguniform", "uniform", "randint"):
            continue
        try:
            values = expand_values(spec)
        except Exception:  # noqa: BLE001 - the value checks report a bad shorthand
            continue
        bad = [v for v in values if not isinstance(v, _CHOICE_TYPES)]
        if bad:
            out.append(
                f"{key}.{name}: Optuna's categorical choices must be null, true/false, numbers or "
                f"strings; {bad[0]!r} is not"
            )
        elif len(set(map(repr, values))) < len(values):
            out.append(f"{key}.{name}: the list has repeated values; Optuna's choices must be distinct")
    return out


def sampler_problem(key: str, name: str) -> str | None:
    """A one-line config problem if the sampler's extra package is not installed."""
    package = NEEDS.get(name)
    if package and importlib.util.find_spec(package) is None:
        return f"{key}: sampler {name} needs the package {package!r}, which is not installed (pip install {package})"
    return None


def make_sampler(name: str, seed: int) -> BaseSampler:
    """``optuna.samplers.<X>Sampler(seed=seed)`` with Optuna's defaults."""
    import optuna

    return getattr(optuna.samplers, SAMPLERS[name])(seed=seed)
