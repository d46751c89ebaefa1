"""Search spaces: turn the config's parameter values into sklearn's ParameterGrid/ParameterSampler.

A config value is a list of candidates, a distribution (``{loguniform: [lo, hi]}``,
``{uniform: [lo, hi]}``, ``{randint: [lo, hi]}``) or a list shorthand (``{range: [...]}``,
``{linspace: [a, b, n]}``, ``{logspace: [a, b, n]}``). Lists inside a candidate list become
tuples, so ``hidden_layer_sizes: [[24], [12, 12]]`` means ``(24,)`` and ``(12, 12)``.
"""

from __future__ import annotations

from typing import Any


def as_candidate(value: Any) -> Any:
    """Turn nested lists into tuples (sklearn's convention for sequence-valued parameters)."""
    if isinstance(value, list):
        return tuple(as_candidate(v) for v in value)
    return value


def expand_values(spec: Any) -> Any:
    """Return a list of candidates or a frozen ``scipy.stats`` distribution for one parameter."""
    if isinstance(spec, list):
        return [as_candidate(v) for v in spec]
    ((kind, args),) = spec.items()
    if kind == "range":
        return list(range(*args))
    if kind in ("linspace", "logspace"):
        import numpy as np

        start, stop, num = args
        points = np.linspace(start, stop, int(num))
        if kind == "logspace":
            # Python's power gives 1e-05 where numpy's gives 9.999999999999999e-06.
            return [10.0 ** float(e) for e in points]
        return [float(v) for v in points]
    from scipy import stats

    low, high = args
    if kind == "loguniform":
        return stats.loguniform(low, high)
    if kind == "uniform":
        return stats.uniform(loc=low, scale=high - low)
    if kind == "randint":
        return stats.randint(int(low), int(high))
    raise ValueError(f"unknown value specification {kind!r}")


def expand_space(space: dict | list) -> list[dict]:
    """Expand every parameter of a space (a dict or a list of dicts) into candidates."""
    spaces = space if isinstance(space, list) else [space]
    return [{name: expand_values(spec) for name, spec in s.items()} for s in spaces]


def candidates(search: dict) -> list[dict]:
    """List the parameter configurations of a grid or random search, in sklearn's order.

    Parameters
    ----------
    search : dict
        The config's ``search`` section (``{"grid": ...}`` or ``{"random": ...}``).

    Returns
    -------
    list of dict
        ``list(ParameterGrid(grid))`` or ``list(ParameterSampler(params, n_iter, random_state=seed))``
        — exactly what GridSearchCV / RandomizedSearchCV evaluate for the same input.
    """
    from sklearn.model_selection import ParameterGrid, ParameterSampler

    ((kind, spec),) = search.items()
    if kind == "grid":
        return list(ParameterGrid(expand_space(spec)))
    if kind == "random":
        dists = expand_space(spec["params"])
        return list(ParameterSampler(dists, spec["n_iter"], random_state=spec.get("seed", 0)))
    raise ValueError(f"search kind {kind!r} has no flat candidate list")


def search_spaces(search: dict) -> list[dict]:
    """The parameter spaces of a ``search`` section, as a list: a grid's section is its space (or
    list of spaces); every other kind keeps them under ``params`` beside its settings."""
    ((kind, spec),) = search.items()
    spaces = spec if kind == "grid" else spec["params"]
    return spaces if isinstance(spaces, list) else [spaces]


def log_spaced_parameters(search: dict) -> set[str]:
    """Names of parameters whose space is log-spaced (loguniform, logspace, or a list
    of positive numbers whose ratios span more than two decades)."""
    names = set()
    for s in search_spaces(search):
        for name, value in s.items():
            if isinstance(value, dict) and next(iter(value)) in ("loguniform", "logspace"):
                names.add(name)
            elif isinstance(value, list):
                nums = [v for v in value if isinstance(v, (int, float)) and not isinstance(v, bool)]
                if len(nums) == len(value) >= 3 and min(nums) > 0 and max(nums) / min(nums) > 100:
                    names.add(name)
    return names
