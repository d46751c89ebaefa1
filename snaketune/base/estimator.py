"""Build estimators from the config without ever evaluating config text.

Classes are imported by dotted path, and only from an allow-list of module prefixes, so a config
cannot name ``os.system`` and have it run.
"""

from __future__ import annotations

import copy
import difflib
import functools
import importlib
from typing import Any

DEFAULT_ALLOWED = ("sklearn",)


class EstimatorSpecError(ValueError):
    """The estimator spec names something that cannot be used as an estimator."""


def allowed_module(module_name: str, allowed_modules=()) -> bool:
    """Whether ``module_name`` is on the allow-list (``sklearn``, then ``allowed_modules``)."""
    allowed = tuple(DEFAULT_ALLOWED) + tuple(allowed_modules)
    return any(module_name == p or module_name.startswith(p + ".") for p in allowed)


def import_class(path: str, allowed_modules=()) -> type:
    """Import ``package.module.Class`` if its module is on the allow-list."""
    allowed = tuple(DEFAULT_ALLOWED) + tuple(allowed_modules)
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise EstimatorSpecError(f"{path!r} is not a dotted path such as 'sklearn.svm.SVC'")
    if not allowed_module(module_name, allowed_modules):
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
        ``{"class": path, "params": {...}}`` or ``{"steps": [step, ...]}``, where a step is
        ``{"name", "class", "params"}`` or a ``ColumnTransformer`` given as ``{"name",
        "transformers": [{"name", "columns", "steps"}, ...], "params"}`` (see :func:`build_step`).
    allowed_modules : sequence of str
        Extra module prefixes besides ``sklearn``.
    seed : int or None
        Every ``random_state`` parameter left at ``None`` is set to this, so runs are reproducible.
    """
    if "pickle" in spec:  # the user's own object, as it is: no seed added
        return load_pickled(spec["pickle"])
    if "steps" in spec:
        from sklearn.pipeline import Pipeline

        estimator = Pipeline([(step["name"], build_step(step, allowed_modules)) for step in spec["steps"]])
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


def load_pickled(path: str) -> Any:
    """An estimator or scorer stored by ``snaketune.GridSearchCV.fit`` (cloudpickle writes ordinary
    pickles; classes it stored by value need cloudpickle installed to load)."""
    import pickle

    with open(path, "rb") as handle:
        return pickle.load(handle)  # noqa: S301 - written by the user's own fit (documented in the schema)


# scikit-learn's scoring=None: the estimator's own ``score`` (not one of get_scorer_names()).
OWN_SCORE = "score"


def own_score(estimator, X, y=None) -> float:
    """The estimator's own ``score(X, y)``, as scikit-learn's ``scoring=None`` scores."""
    return estimator.score(X, y)


def build_scorers(names, stored: dict | None = None) -> dict:
    """Scorer name -> scorer: a scikit-learn scorer name, :data:`OWN_SCORE`, or a name of
    ``stored`` (name -> path of a callable a search pickled; the config checks vet the path
    before anything is loaded)."""
    from sklearn.metrics import get_scorer

    stored = stored or {}
    scorers = {}
    for name in names:
        if name in stored:
            scorers[name] = load_scorer(stored[name])
        else:
            scorers[name] = own_score if name == OWN_SCORE else get_scorer(name)
    return scorers


def load_scorer(path: str):
    """A callable scorer stored by ``snaketune.GridSearchCV.fit``. A plain function is wrapped so
    that a dict it returns (scikit-learn's multi-metric callable, which a trial's one score per
    name cannot hold) fails the trial with that said (``make_scorer``'s scorers return numbers)."""
    scorer = load_pickled(path)
    if not callable(scorer):
        raise TypeError(f"{path!r} holds a {type(scorer).__name__}, not a callable scorer(estimator, X, y)")
    if hasattr(scorer, "_score"):  # scikit-learn's _BaseScorer: kept, for its shared predictions
        return scorer
    return functools.partial(_one_score, scorer)


def _one_score(scorer, estimator, X, y=None):
    value = scorer(estimator, X, y)
    if isinstance(value, dict):
        raise TypeError(
            f"the scorer {getattr(scorer, '__name__', scorer)!r} returned a dict: a callable scoring that returns "
            "several scores is not supported yet (give scoring a dict of callables, one score each)"
        )
    return value


def build_step(step: dict, allowed_modules=()) -> Any:
    """One pipeline step: its class with fixed parameters, or a ``ColumnTransformer``.

    A ``ColumnTransformer`` step lists ``transformers``, each a named column group whose
    ``steps`` become a ``Pipeline`` applied to its ``columns`` (see :func:`column_selector`), so
    a group step's parameter is ``<step>__<group>__<group step>__<param>``.
    """
    if "transformers" not in step:
        return import_class(step["class"], allowed_modules)(**step.get("params", {}))
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    groups = [
        (
            group["name"],
            Pipeline([(s["name"], build_step(s, allowed_modules)) for s in group["steps"]]),
            column_selector(group["columns"]),
        )
        for group in step["transformers"]
    ]
    return ColumnTransformer(groups, **step.get("params", {}))


def column_selector(columns):
    """Column names as given, or ``make_column_selector(dtype_include=..., ...)`` for a mapping."""
    if isinstance(columns, dict):
        from sklearn.compose import make_column_selector

        return make_column_selector(**columns)
    return list(columns)


def class_entries(spec: dict) -> list[tuple[str, str]]:
    """``(config key, dotted class path)`` of every class an estimator spec names, in order."""
    if "pickle" in spec:
        return []
    if "steps" not in spec:
        return [("estimator.class", spec["class"])]
    out = []
    for i, step in enumerate(spec["steps"]):
        if "transformers" not in step:
            out.append((f"estimator.steps[{i}].class", step["class"]))
            continue
        for j, group in enumerate(step["transformers"]):
            for k, sub in enumerate(group["steps"]):
                out.append((f"estimator.steps[{i}].transformers[{j}].steps[{k}].class", sub["class"]))
    return out


def estimator_task(estimator) -> str | None:
    """``"classification"`` for a classifier, ``"regression"`` for a regressor, ``None`` when the
    estimator says neither (scikit-learn's ``is_classifier``/``is_regressor``, as ``check_cv`` asks)."""
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(estimator):
        return "classification"
    return "regression" if is_regressor(estimator) else None


def estimator_classes(spec: dict) -> list[str]:
    """Dotted class paths named by an estimator spec."""
    return [path for _, path in class_entries(spec)]


def fixed_params(spec: dict) -> list[tuple[str, str, Any]]:
    """``(config key, set_params name, value)`` of every fixed parameter of an estimator spec."""
    if "pickle" in spec:
        return []
    if "steps" not in spec:
        return [(f"estimator.params.{name}", name, value) for name, value in spec.get("params", {}).items()]
    out = []
    for i, step in enumerate(spec["steps"]):
        where, prefix = f"estimator.steps[{i}]", step["name"]
        out += [(f"{where}.params.{n}", f"{prefix}__{n}", v) for n, v in step.get("params", {}).items()]
        for j, group in enumerate(step.get("transformers", [])):
            for k, sub in enumerate(group["steps"]):
                key = f"{where}.transformers[{j}].steps[{k}].params"
                name = f"{prefix}__{group['name']}__{sub['name']}"
                out += [(f"{key}.{n}", f"{name}__{n}", v) for n, v in sub.get("params", {}).items()]
    return out


# A name set_params takes but get_params does not report is refused when it is this close to one
# that get_params reports (difflib ratio): ``n_estimatorz`` is a typo of ``n_estimators``, not one
# of XGBoost's or LightGBM's own parameters. None of LightGBM's ~300 parameter names and aliases is
# this close to a name its LGBMClassifier reports.
TYPO_CUTOFF = 0.85
_PROBE = "snaketune_probe_name"


def takes_any_param(estimator) -> bool:
    """True when ``set_params`` takes names ``get_params`` does not report.

    XGBoost's and LightGBM's estimators (``**kwargs`` in ``__init__``) keep such names and pass
    them to their library; scikit-learn's refuse them.
    """
    probe = copy.deepcopy(estimator)
    try:
        probe.set_params(**{_PROBE: None})
    except Exception:  # noqa: BLE001 - ValueError from BaseEstimator.set_params, or anything else
        return False
    try:
        return _PROBE in probe.get_params(deep=False)
    except Exception:  # noqa: BLE001
        return False


def _owner(estimator, name: str):
    """The object ``name`` sets a parameter of, and that parameter's own name (``None`` if none)."""
    owner_name, _, param = name.rpartition("__")
    if not owner_name:
        return estimator, param
    owner = estimator.get_params(deep=True).get(owner_name)
    return (owner, param) if hasattr(owner, "get_params") and hasattr(owner, "set_params") else (None, param)


def accepts_param(estimator, name: str) -> bool:
    """Whether ``estimator.set_params(**{name: value})`` sets a parameter, as GridSearchCV calls it.

    ``name`` is accepted when ``get_params(deep=True)`` reports it (``<step>__<param>`` for a
    pipeline), or when its owner takes any name (see :func:`takes_any_param`) and ``name`` is not a
    near-miss (a likely typo) of one the owner reports.
    """
    if name in estimator.get_params(deep=True):
        return True
    owner, param = _owner(estimator, name)
    if owner is None or not takes_any_param(owner):
        return False
    return not difflib.get_close_matches(param, list(owner.get_params(deep=False)), n=1, cutoff=TYPO_CUTOFF)


def closest_param(estimator, name: str) -> str | None:
    """The name ``get_params(deep=True)`` reports that ``name`` most looks like (a typo hint)."""
    owner, param = _owner(estimator, name)
    if owner is None:  # a misspelt step or column group: compare whole nested names
        close = difflib.get_close_matches(name, list(estimator.get_params(deep=True)), n=1)
        return close[0] if close else None
    close = difflib.get_close_matches(param, list(owner.get_params(deep=False)), n=1)
    if not close:
        return None
    return name[: len(name) - len(param)] + close[0]
