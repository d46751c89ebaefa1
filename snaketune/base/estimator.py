"""Build estimators from the config without ever evaluating config text.

Classes are imported by dotted path, and only from an allow-list of module prefixes, so a config
cannot name ``os.system`` and have it run.
"""

from __future__ import annotations

import importlib
from typing import Any

DEFAULT_ALLOWED = ("sklearn",)


class EstimatorSpecError(ValueError):
    """The estimator spec names something that cannot be used as an estimator."""


def import_class(path: str, allowed_modules=()) -> type:
    """Import ``package.module.Class`` if its module is on the allow-list."""
    allowed = tuple(DEFAULT_ALLOWED) + tuple(allowed_modules)
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise EstimatorSpecError(f"{path!r} is not a dotted path such as 'sklearn.svm.SVC'")
    if not any(module_name == p or module_name.startswith(p + ".") for p in allowed):
        raise EstimatorSpecError(
            f"{path!r} is outside the allowed modules {list(allowed)} "
            "(extend them with the top-level key allowed_modules)"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EstimatorSpecError(f"cannot import module {module_name!r}: {exc}") from None
    cls = getattr(module, attr, None)
    if cls is None:
        raise EstimatorSpecError(f"module {module_name!r} has no attribute {attr!r}")
    if not isinstance(cls, type) or not all(hasattr(cls, m) for m in ("fit", "get_params", "set_params")):
        raise EstimatorSpecError(
            f"{path!r} is not a scikit-learn compatible estimator class (needs fit/get_params/set_params)"
        )
    return cls


def build_estimator(spec: dict, allowed_modules=(), seed: int | None = None) -> Any:
    """Instantiate the configured estimator or pipeline with its fixed parameters.

    Parameters
    ----------
    spec : dict
        ``{"class": path, "params": {...}}`` or ``{"steps": [{"name", "class", "params"}, ...]}``.
    allowed_modules : sequence of str
        Extra module prefixes besides ``sklearn``.
    seed : int or None
        Every ``random_state`` parameter left at ``None`` is set to this, so runs are reproducible.
    """
    if "steps" in spec:
        from sklearn.pipeline import Pipeline

        steps = [
            (step["name"], import_class(step["class"], allowed_modules)(**step.get("params", {})))
            for step in spec["steps"]
        ]
        estimator = Pipeline(steps)
    else:
        estimator = import_class(spec["class"], allowed_modules)(**spec.get("params", {}))
    if seed is not None:
        unset = {
            name: seed
            for name, value in estimator.get_params(deep=True).items()
            if (name == "random_state" or name.endswith("__random_state")) and value is None
        }
        if unset:
            estimator.set_params(**unset)
    return estimator


def estimator_classes(spec: dict) -> list[str]:
    """Dotted class paths named by an estimator spec."""
    if "steps" in spec:
        return [step["class"] for step in spec["steps"]]
    return [spec["class"]]
