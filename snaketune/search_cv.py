"""Drop-in scikit-learn searches whose trials are content-addressed files: computed once, kept.

:class:`GridSearchCV` and :class:`RandomizedSearchCV` take scikit-learn's arguments, find their
candidates with scikit-learn's own ``_run_search`` (``ParameterGrid``/``ParameterSampler``) and
their folds with ``check_cv``, and check parameters and scoring as scikit-learn does, before
anything runs. ``fit`` then stores what a trial needs under ``study_dir`` (X and y, the pickled
estimator and the folds, each named by its content) and runs a study on them through Snakemake:
one trial file per (candidate, fold), so a second ``fit`` with a grown grid runs only the new
candidates' folds, and the same ``fit`` in another Python runs none. ``cv_results_`` is built
from the trial files by scikit-learn's own ``_format_results``; the refit runs here, as
scikit-learn's does.

>>> from snaketune import GridSearchCV
>>> search = GridSearchCV(SVC(), {"C": [1, 10]}, n_jobs=2).fit(X, y)   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import numbers
import os
import re
import sys
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn import model_selection as _ms
from sklearn.base import clone, is_classifier
from sklearn.model_selection import check_cv
from sklearn.utils import indexable

from snaketune import engine
from snaketune.api import RunError, run_snakemake, snakemake_command
from snaketune.base.jsonutil import to_jsonable, write_bytes_atomic
from snaketune.runtime import local
from snaketune.search.plan import prepare_args

DEFAULT_STUDY_DIR = "snaketune-searches"
STUDY_PREFIX = "search-"  # <study_dir>/results/search-<sha of X and y>/: one study folder a data set
TARGET = "__snaketune_target__"  # the target's column beside a DataFrame's features


@dataclass(frozen=True)
class StoredInputs:
    """The files a study reads, each named by the sha256 of its content, by paths relative to
    ``root`` (the ``study_dir``): they are part of every trial's key, so a moved or renamed
    ``study_dir`` keeps its trials."""

    data: dict
    estimator: str
    folds: str
    study: str  # the study (folder) name: one a data set
    root: Path


class _StoredSearch:
    """What both searches add to scikit-learn's: storing, running the study, reading it back."""

    def fit(self, X, y=None, groups=None, **fit_params):
        """Run every (candidate, fold) trial not computed yet, then refit the best as scikit-learn does.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or DataFrame
        y : array-like of shape (n_samples,)
        groups : array-like of shape (n_samples,), optional
            Group labels for a group-aware ``cv`` (used to make the folds, as scikit-learn does).

        Returns
        -------
        self
        """
        if fit_params:
            raise TypeError(f"snaketune searches take no fit parameters yet (got {', '.join(sorted(fit_params))})")
        self._validate_params()
        if self.trial_timeout is not None and self.trial_timeout <= 0:
            raise ValueError(f"trial_timeout must be > 0 seconds, got {self.trial_timeout!r}")
        scorers, refit_metric = self._get_scorers()  # scikit-learn's errors for a bad scoring/refit
        metrics = metric_names(self.scoring)
        X, y, groups = indexable(X, y, groups)
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        self.n_splits_ = cv.get_n_splits(X, y, groups)
        splits = [(np.asarray(tr), np.asarray(te)) for tr, te in cv.split(X, y, groups)]
        if len(splits) != self.n_splits_:
            raise ValueError(
                "cv.split and cv.get_n_splits return inconsistent results. "
                f"Expected {self.n_splits_} splits, got {len(splits)}"
            )
        candidates = self._candidate_list()
        base = clone(self.estimator)
        _check_candidates(base, candidates)
        if self.verbose > 0:  # scikit-learn's line; Snakemake's progress follows
            n = len(candidates)
            print(f"Fitting {self.n_splits_} folds for each of {n} candidates, totalling {n * self.n_splits_} fits")

        if _use_engine():
            engine.start()  # its imports (~2 s) overlap storing the inputs, the plan and the first trials
        workdir = Path(self.study_dir or DEFAULT_STUDY_DIR).resolve()
        inputs = store_inputs(workdir / "results", X, y, base, splits)
        config = study_config(self, inputs, candidates, metrics, refit_metric)
        probe = TrialProbe(base, X, y, splits[0])
        records = run_study(config, workdir, self._cores(), self.profile, warm=_modules(base), probe=probe)
        out = _trial_outcomes(records, metrics, self.scoring, self.return_train_score, self.error_score)
        _warn_about_failures(records, self.error_score)

        results = self._format_results(candidates, self.n_splits_, out)
        self.multimetric_ = not _single_metric(self.scoring)
        if self.refit or not self.multimetric_:
            self.best_index_ = self._select_best_index(self.refit, refit_metric, results)
            if not callable(self.refit):
                self.best_score_ = results[f"mean_test_{refit_metric}"][self.best_index_]
            self.best_params_ = results["params"][self.best_index_]
        if self.refit:
            self.best_estimator_, self.refit_time_ = refit_once(base, self.best_params_, X, y, inputs)
            if hasattr(self.best_estimator_, "feature_names_in_"):
                self.feature_names_in_ = self.best_estimator_.feature_names_in_
        self.scorer_ = scorers._scorers if hasattr(scorers, "_scorers") else scorers
        self.cv_results_ = results
        self.study_path_ = workdir / "results" / inputs.study
        return self

    def _candidate_list(self) -> list[dict]:
        """The candidates scikit-learn's search evaluates, in its order (its own generators)."""
        found = list(self._candidates())
        if not found:
            raise ValueError("No fits were performed. Was the CV iterator empty? Were there no candidates?")
        if any(not candidate for candidate in found):
            raise NotImplementedError(
                "snaketune searches need at least one parameter in every grid or space (an empty one, {}, is "
                "scikit-learn's search of the estimator as given: use sklearn.model_selection.cross_validate)"
            )
        return found

    def _cores(self):
        if self.profile is not None and self.n_jobs is None:
            return None  # the profile's jobs
        if self.n_jobs is None:
            return 1
        return "all" if self.n_jobs < 0 else int(self.n_jobs)


class GridSearchCV(_StoredSearch, _ms.GridSearchCV):
    """scikit-learn's ``GridSearchCV`` whose trials are stored under ``study_dir`` and never recomputed.

    Parameters
    ----------
    estimator, param_grid, scoring, n_jobs, refit, cv, verbose, pre_dispatch, error_score, return_train_score
        As scikit-learn's (``n_jobs`` is the number of cores trials run on; ``pre_dispatch`` is unused).
    study_dir : path, default "snaketune-searches"
        Where the trials (and the stored data, estimator and folds) live.
    profile : str or path, optional
        A Snakemake profile folder, or ``"slurm"`` for the shipped SLURM profile.
    trial_timeout : float, optional
        Seconds after which a trial is stopped and scored ``error_score``.
    """

    _parameter_constraints: dict = {**_ms.GridSearchCV._parameter_constraints}

    def __init__(
        self,
        estimator,
        param_grid,
        *,
        scoring=None,
        n_jobs=None,
        refit=True,
        cv=None,
        verbose=0,
        pre_dispatch="2*n_jobs",
        error_score=np.nan,
        return_train_score=False,
        study_dir=None,
        profile=None,
        trial_timeout=None,
    ):
        super().__init__(
            estimator,
            param_grid,
            scoring=scoring,
            n_jobs=n_jobs,
            refit=refit,
            cv=cv,
            verbose=verbose,
            pre_dispatch=pre_dispatch,
            error_score=error_score,
            return_train_score=return_train_score,
        )
        self.study_dir = study_dir
        self.profile = profile
        self.trial_timeout = trial_timeout

    def _candidates(self):
        return _ms.ParameterGrid(self.param_grid)


class RandomizedSearchCV(_StoredSearch, _ms.RandomizedSearchCV):
    """scikit-learn's ``RandomizedSearchCV`` whose trials are stored under ``study_dir`` and never
    recomputed (parameters as :class:`GridSearchCV`'s, plus ``param_distributions``, ``n_iter``,
    ``random_state``: the same candidates as scikit-learn's ``ParameterSampler`` draws)."""

    _parameter_constraints: dict = {**_ms.RandomizedSearchCV._parameter_constraints}

    def __init__(
        self,
        estimator,
        param_distributions,
        *,
        n_iter=10,
        scoring=None,
        n_jobs=None,
        refit=True,
        cv=None,
        verbose=0,
        pre_dispatch="2*n_jobs",
        random_state=None,
        error_score=np.nan,
        return_train_score=False,
        study_dir=None,
        profile=None,
        trial_timeout=None,
    ):
        super().__init__(
            estimator,
            param_distributions,
            n_iter=n_iter,
            scoring=scoring,
            n_jobs=n_jobs,
            refit=refit,
            cv=cv,
            verbose=verbose,
            pre_dispatch=pre_dispatch,
            random_state=random_state,
            error_score=error_score,
            return_train_score=return_train_score,
        )
        self.study_dir = study_dir
        self.profile = profile
        self.trial_timeout = trial_timeout

    def _candidates(self):
        return _ms.ParameterSampler(self.param_distributions, self.n_iter, random_state=self.random_state)


_EXTRA_CONSTRAINTS = {
    "study_dir": [str, os.PathLike, None],
    "profile": [str, os.PathLike, None],
    "trial_timeout": [numbers.Real, None],
}
GridSearchCV._parameter_constraints.update(_EXTRA_CONSTRAINTS)
RandomizedSearchCV._parameter_constraints.update(_EXTRA_CONSTRAINTS)


def _single_metric(scoring) -> bool:
    return scoring is None or isinstance(scoring, str) or callable(scoring)


@dataclass(frozen=True)
class Metrics:
    """How a search's ``scoring`` reaches its trials: ``names``, result name (``cv_results_``'s
    ``mean_test_<name>``) -> the study's scorer name; ``pickled``, the study's name of each callable
    -> its cloudpickled bytes (stored beside the estimator; their content is part of every trial's key)."""

    names: dict[str, str]
    pickled: dict[str, bytes]


def metric_names(scoring) -> Metrics:
    """The study's scorers for scikit-learn's ``scoring``: names as they are, ``None`` as the
    estimator's own ``score``, a callable pickled (one clear error when it cannot be, before anything
    runs) under a name no scikit-learn scorer has."""
    from sklearn.metrics import get_scorer_names

    from snaketune.base.estimator import OWN_SCORE

    if scoring is None:
        return Metrics({"score": OWN_SCORE}, {})
    if isinstance(scoring, str):
        return Metrics({"score": scoring}, {})
    if callable(scoring):
        entries = {"score": scoring}
    elif isinstance(scoring, dict):
        entries = dict(scoring)
    else:
        entries = {name: name for name in scoring}
    names, pickled = {}, {}
    taken = {*get_scorer_names(), OWN_SCORE, *(v for v in entries.values() if isinstance(v, str))}
    for result, scorer in entries.items():
        if isinstance(scorer, str):
            names[result] = scorer
            continue
        content = _scorer_bytes(scorer, None if callable(scoring) else result)
        name = _readable(result if isinstance(scoring, dict) else _callable_name(scorer))
        if name in taken:
            name = f"{name}-{hashlib.sha256(content).hexdigest()[:8]}"
        taken.add(name)
        names[result], pickled[name] = name, content
    return Metrics(names, pickled)


def _scorer_bytes(scorer, key: str | None) -> bytes:
    import cloudpickle

    try:
        return cloudpickle.dumps(scorer)
    except Exception as exc:
        where = "scoring" if key is None else f"scoring[{key!r}]"
        raise TypeError(f"{where}: the scorer {scorer!r} cannot be serialised for the trials: {exc}") from exc


def _callable_name(scorer) -> str:
    """A callable's function name (a ``make_scorer`` scorer's metric function's)."""
    function = getattr(scorer, "_score_func", scorer)
    return getattr(function, "__name__", "") or type(scorer).__name__


def _readable(name: str) -> str:
    """A name for the study's scorer: letters, digits and ``_`` (``<lambda>`` -> ``lambda``)."""
    return re.sub(r"\W+", "_", str(name)).strip("_") or "scorer"


def _check_candidates(estimator, candidates: list[dict]) -> None:
    """scikit-learn's error for an unknown parameter, and ours for a value a trial file cannot hold."""
    seen = set()
    for params in candidates:
        names = tuple(sorted(params))
        if names not in seen:
            seen.add(names)
            clone(estimator).set_params(**clone(params, safe=False))
        for name, value in params.items():
            stored = to_jsonable(value)
            try:
                back = json.loads(json.dumps(stored))
            except (TypeError, ValueError):
                back = _UNSTORABLE
            if back is _UNSTORABLE or not _same_value(back, value):
                raise ValueError(
                    f"parameter {name!r}: the value {value!r} cannot be stored in a trial file (snaketune "
                    "searches take numbers, strings, booleans, None, and lists or tuples of them)"
                )


_UNSTORABLE = object()


def _same_value(back, value) -> bool:
    """Whether a value read back from a trial file's JSON is the value given (lists and tuples
    alike; a dict's non-text keys or a NaN do not come back)."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, dict):
        return (
            isinstance(back, dict)
            and list(back) == list(value)
            and all(_same_value(back[k], v) for k, v in value.items())
        )
    if isinstance(value, (list, tuple)):
        return isinstance(back, list) and len(back) == len(value) and all(map(_same_value, back, value))
    if isinstance(value, float):
        return isinstance(back, float) and back == value  # NaN is never equal
    return type(back) is type(value) and back == value


def store_inputs(output_dir: Path, X, y, estimator, splits) -> StoredInputs:
    """Write X and y, the estimator and the folds into the data set's study folder
    (``<output_dir>/search-<sha>/inputs/``), each named by its content's sha256 (a file that
    exists is not written again). The estimator is serialised first: it is the one most likely to
    fail (a step cloudpickle cannot serialise), and then nothing is written. The paths returned
    are relative to ``output_dir``'s parent, the folder Snakemake runs in."""
    estimator_bytes = _estimator_bytes(estimator)
    stem, suffix, data_bytes, data = _data_bytes(X, y)
    study = STUDY_PREFIX + hashlib.sha256(data_bytes).hexdigest()[:12]
    root = output_dir.parent
    folder = Path(output_dir.name) / study / "inputs"
    data = {**data, stem: _store_once(root, folder, "data", suffix, data_bytes)}
    estimator_path = _store_once(root, folder, "estimator", ".pkl", estimator_bytes)
    return StoredInputs(data, estimator_path, _store_folds(root, folder, splits), study, root)


def _store_once(root: Path, folder: Path, stem: str, suffix: str, content: bytes) -> str:
    path = folder / f"{stem}-{hashlib.sha256(content).hexdigest()[:20]}{suffix}"
    if not (root / path).exists():
        write_bytes_atomic(root / path, content)
    return str(path)


def _npz_bytes(arrays: dict) -> bytes:
    """An ``.npz`` whose bytes depend on the arrays only (``np.savez`` stamps the time)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in arrays.items():
            entry = io.BytesIO()
            np.lib.format.write_array(entry, np.ascontiguousarray(array), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), entry.getvalue())
    return buffer.getvalue()


def _data_bytes(X, y) -> tuple[str, str, bytes, dict]:
    """The data source key, file suffix, file content and other keys of X and y."""
    if hasattr(X, "iloc") and hasattr(X, "columns"):
        if y is None:
            raise NotImplementedError(
                "snaketune searches take y=None (unsupervised) with an array X, not a DataFrame, yet"
            )
        if not all(isinstance(c, str) for c in X.columns):
            raise ValueError("snaketune searches need a DataFrame's column names to be strings")
        if TARGET in X.columns:
            raise ValueError(f"X has a column named {TARGET!r}, which snaketune uses for the target")
        frame = X.reset_index(drop=True).assign(**{TARGET: np.asarray(y)})
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return "parquet", ".parquet", buffer.getvalue(), {"target": TARGET}
    if hasattr(X, "tocsr"):
        raise NotImplementedError("snaketune searches take dense arrays or DataFrames, not sparse matrices, yet")
    X = np.asarray(X)
    if X.ndim != 2 or X.dtype.kind not in "biuf":
        raise ValueError(f"snaketune searches take X as a 2-D numeric array or a DataFrame (got {X.dtype}, {X.ndim}-D)")
    if y is None:  # unsupervised: X alone (the trials fit and score with y=None)
        return "arrays", ".npz", _npz_bytes({"X": X}), {}
    y = np.asarray(y)
    if y.dtype.kind == "O":
        y = y.astype(str)  # labels as text: .npz files hold no Python objects
    return "arrays", ".npz", _npz_bytes({"X": X, "y": y}), {}


def _estimator_bytes(estimator) -> bytes:
    import cloudpickle

    try:
        return cloudpickle.dumps(estimator)
    except Exception as exc:
        raise TypeError(
            f"the estimator cannot be serialised for the trials: {_unpicklable_part(estimator)}: {exc}"
        ) from exc


def _unpicklable_part(estimator) -> str:
    """The innermost parameter (a pipeline step, a function, a value) cloudpickle cannot serialise."""
    import cloudpickle

    failing = []
    for name, value in estimator.get_params(deep=True).items():
        try:
            cloudpickle.dumps(value)
        except Exception:  # noqa: BLE001 - any reason is the one to report
            failing.append(name)
    if not failing:
        return type(estimator).__name__
    name = max(failing, key=lambda n: n.count("__"))
    return f"parameter {name!r} ({type(estimator.get_params(deep=True)[name]).__name__})"


def _store_folds(root: Path, folder: Path, splits) -> str:
    arrays = {}
    for k, (train, test) in enumerate(splits):
        arrays[f"train_{k}"] = np.asarray(train, dtype=np.int64)
        arrays[f"test_{k}"] = np.asarray(test, dtype=np.int64)
    return _store_once(root, folder, "folds", ".npz", _npz_bytes(arrays))


def _modules(estimator) -> tuple[str, ...]:
    """The modules of the estimator and of its parameters' values (its steps): the run imports them."""
    values = [estimator, *estimator.get_params(deep=True).values()]
    return tuple(sorted({type(v).__module__ for v in values}))


def study_config(search, inputs: StoredInputs, candidates: list[dict], metrics: Metrics, refit_metric) -> dict:
    """The study config of a search: every candidate a one-point grid, so the order is the search's.
    Its callable scorers are stored beside the estimator (named by content, as it is) and listed in
    ``scorers``: the config's checks load a pickle from the study's inputs only."""
    scorers = list(dict.fromkeys(metrics.names.values()))
    refit_name = metrics.names.get(refit_metric, scorers[0]) if isinstance(refit_metric, str) else scorers[0]
    error_score = search.error_score
    if isinstance(error_score, float) and np.isnan(error_score):
        error_score = "nan"
    stored = {}
    if metrics.pickled:
        folder = Path(inputs.estimator).parent
        stored = {name: _store_once(inputs.root, folder, "scorer", ".pkl", b) for name, b in metrics.pickled.items()}
    return {
        "study": inputs.study,
        "output_dir": "results",
        "data": dict(inputs.data),
        "estimator": {"pickle": inputs.estimator},
        "search": {"grid": [{name: [to_jsonable(value)] for name, value in c.items()} for c in candidates]},
        "cv": {"kind": "folds", "file": inputs.folds},
        "scoring": scorers,
        **({"scorers": stored} if stored else {}),
        "refit": refit_name,
        "return_train_score": bool(search.return_train_score),
        "error_score": error_score,
        "trial_timeout": search.trial_timeout,
        "report": {"top_n": 5},
    }


@dataclass(frozen=True)
class TrialProbe:
    """What a fit has in memory to time its trials with, before the run: the estimator, the data
    and the first fold."""

    estimator: object
    X: object
    y: object
    split: tuple


def run_study(
    config: dict, workdir: Path, cores, profile, warm: tuple[str, ...] = (), probe: TrialProbe | None = None
) -> list[list]:
    """The trial records, one list of folds per candidate: read from the study's files when every
    trial is there (Snakemake would find nothing to do, so it is not started), else after running
    the missing trials and the leaderboard with Snakemake."""
    import copy

    from snaketune.config.load import load_config
    from snaketune.results.status import study_plan, trial_rows

    validated = load_config(copy.deepcopy(config), workdir, check_data=False)
    plan, layout = study_plan(validated, workdir)
    rows = trial_rows(plan, layout)
    records, missing = _read_trials(workdir, rows)
    if not missing:
        return records
    use_engine = _use_engine()
    if use_engine:
        engine.start()  # if the fit did not: its imports overlap the lock, the timing and the first trials
    state = workdir / "results" / config["study"] / ".snaketune"
    with _locked(state / "fit.lock"):  # another fit of this data set runs first: then its trials are found
        records, missing = _read_trials(workdir, rows)
        if not missing:
            return records
        if probe is not None:
            run_trials_here(validated, plan, workdir, probe, [Path(p).stem for p in missing], use_engine, profile)
        return _run_missing(config, workdir, cores, profile, rows, state / "search.yaml", warm, use_engine)


def _use_engine() -> bool:
    return os.environ.get("SNAKETUNE_ENGINE", "1") != "0"


def run_trials_here(
    validated: dict, plan, workdir: Path, probe: TrialProbe, missing: list[str], use_engine: bool, profile=None
) -> None:
    """Trials in this process before the run (:mod:`snaketune.runtime.local`):

    - on a cluster (``profile``), the batching probe: the run sizes its batch jobs
      (``trials_per_job: auto``) from the time of the first 3 candidates' first fold; timed
      here, saved under the run's key, so the run does not time them again, after the engine
      has started (a local run has nothing to size: its batch jobs run their trials on forks);
    - on a local run, while this process's engine is still starting, the missing trials, in
      order, until one takes longer than ``local.MAX_TRIAL_SECONDS``: one core is busy with the
      engine's imports, the other would be idle.

    Both are real trials written to their files when the data is small, there is no
    ``trial_timeout`` and ``error_score`` is not ``"raise"``; otherwise the probe times fits
    without keeping them (never under a ``trial_timeout``: the run times in a fork, with a limit).
    """
    from snaketune.runtime import batching

    timeout = validated.get("trial_timeout") is not None
    measure = profile is not None and not timeout and batching.wants_measurement(validated, plan, workdir)
    probe_ids = list(dict.fromkeys(f"{key}_0" for key in plan.config_keys[:3]))
    here = local.eligible(validated, _nbytes(probe.X))
    if measure and not (here and set(probe_ids) <= set(missing)):
        time_trials_here(validated, plan, workdir, probe)
        measure = False
    # A cluster's trials are its jobs': the login node runs no more of them than the probe's.
    meanwhile = profile is None and use_engine
    if not here or not (measure or (meanwhile and engine.starting())):
        return
    order = list(dict.fromkeys((probe_ids if measure else []) + missing))
    times = []
    with contextlib.closing(local.run_trials(validated, plan, prepare_args(validated, plan), workdir, order)) as runs:
        for record in runs:
            times.append(record.fit_time + record.score_time)
            if measure and (len(times) == len(probe_ids) or times[-1] > 1.0):  # as batching.time_fits
                batching.remember_trial_seconds(validated, plan, float(np.median(times)), workdir)
                measure = False
            if not measure and not (meanwhile and times[-1] <= local.MAX_TRIAL_SECONDS and engine.starting()):
                break


def time_trials_here(validated: dict, plan, workdir: Path, probe: TrialProbe) -> None:
    """Time the first candidates' fits in this process without keeping them (the run's probe) and
    save the time where the run finds it."""
    from threadpoolctl import threadpool_limits

    from snaketune.runtime import batching

    try:
        with threadpool_limits(int(validated["resources"]["threads"])):  # a trial job's threads
            seconds = batching.time_fits(
                probe.estimator,
                probe.X,
                probe.y,
                probe.split,
                validated["scoring"],
                plan.candidates[:3],
                {name: str(workdir / path) for name, path in validated.get("scorers", {}).items()},
            )
    except Exception:  # noqa: BLE001 - user code: the run measures it again, isolated
        return
    if np.isfinite(seconds):
        batching.remember_trial_seconds(validated, plan, seconds, workdir)


def _nbytes(X) -> int:
    """Memory held by X (a DataFrame's columns included)."""
    if hasattr(X, "memory_usage"):
        return int(X.memory_usage(deep=True).sum())
    return int(np.asarray(X).nbytes)


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive ``flock`` on ``path`` for the block (waits for the holder; released if it dies)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# The run's progress line (snaketune.workflow.terminal's Progress.line, printed every few seconds).
PROGRESS_LINE = re.compile(r"\[\d+:\d\d:\d\d\] (?P<done>\d+)/(?P<total>\d+) trials \(\d+%\), (?P<rest>.*)")


def in_notebook() -> bool:
    """Whether this Python is a Jupyter kernel (IPython imported and its kernel app running)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class RunOutput:
    """A fit's run output for ``stream``, line by line. In a notebook the progress lines drive a
    progress bar (``tqdm.auto``: a widget where ipywidgets is installed, else a text bar) instead
    of piling up; elsewhere every line is written as it comes."""

    def __init__(self, stream, notebook: bool = False, bar_factory=None):
        self.stream = stream
        self.notebook = notebook
        self.bar_factory = bar_factory
        self.bar = None

    def write(self, line: str) -> None:
        match = PROGRESS_LINE.fullmatch(line.rstrip("\n")) if self.notebook else None
        if match is None:
            self.stream.write(line)
            return
        if self.bar is None:
            if self.bar_factory is None:
                from tqdm.auto import tqdm as bar_factory
            else:
                bar_factory = self.bar_factory
            self.bar = bar_factory(total=int(match["total"]), unit="trial", desc="trials")
        self.bar.total = int(match["total"])
        self.bar.n = int(match["done"])
        self.bar.set_postfix_str(match["rest"], refresh=False)
        self.bar.refresh()

    def flush(self) -> None:
        self.stream.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _run_missing(
    config: dict,
    workdir: Path,
    cores,
    profile,
    rows: list[list[str]],
    configfile: Path,
    warm: tuple[str, ...] = (),
    use_engine: bool = True,
) -> list[list]:
    from snaketune.api import write_config

    write_config(configfile, config)
    # A run stopped with its engine leaves batch manifests marked incomplete: they run again (their
    # trial files, written atomically, are kept and not recomputed).
    cmd = snakemake_command(configfile, cores, profile, ["aggregate", "--rerun-incomplete"])
    if use_engine:
        with contextlib.closing(RunOutput(sys.stdout, notebook=in_notebook())) as output:
            # argv after `python -m snaketune.runtime.snakemake_cli`
            code, interrupted = engine.run(cmd[3:], workdir, output=output, warm=warm)
    else:  # a new Python for the run
        copy_output = not (sys.stdout.isatty() and _fileno(sys.stdout) == 1)
        code, interrupted = run_snakemake(cmd, workdir, copy_output=copy_output)
    if interrupted:
        raise KeyboardInterrupt  # finished trials are kept: fit again to go on
    if code != 0:
        raise RunError(f"the study in {workdir} failed (snakemake exit status {code}; see its output above)", code)
    records, missing = _read_trials(workdir, rows)
    if missing:
        raise RunError(f"{len(missing)} trial files missing after the run, e.g. {missing[0]}", 1)
    return records


def _read_trials(workdir: Path, rows: list[list[str]]) -> tuple[list[list], list[str]]:
    from snaketune.results.status import read_finished

    found = read_finished(workdir / p for row in rows for p in row)
    missing = [p for row in rows for p in row if Path(p).stem not in found]
    return ([] if missing else [[found[Path(p).stem] for p in row] for row in rows]), missing


def _fileno(stream) -> int:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return -1


def _trial_outcomes(rows: list[list], metrics: Metrics, scoring, train: bool, error_score) -> list[dict]:
    """scikit-learn's ``_fit_and_score`` results, candidate-major, from the trial records."""
    single = _single_metric(scoring)
    fill = np.nan if isinstance(error_score, str) else float(error_score)

    def scores(values: dict):
        found = {name: values.get(scorer) for name, scorer in metrics.names.items()}
        named = {name: fill if value is None else float(value) for name, value in found.items()}  # None: failed
        return named["score"] if single else named

    out = []
    for folds in rows:
        for record in folds:
            entry = {
                "test_scores": scores(record.test_scores),
                "fit_time": record.fit_time,
                "score_time": record.score_time,
                "n_test_samples": record.n_test,
                "fit_error": record.error,
            }
            if train:
                entry["train_scores"] = scores(record.train_scores)
            out.append(entry)
    return out


def refit_once(estimator, params: dict, X, y, inputs: StoredInputs):
    """scikit-learn's refit (``clone(estimator).set_params(**params).fit(X, y)``), stored beside the
    inputs it was fitted on, so a fit with the same best configuration loads it (and its time)."""
    import pickle

    import cloudpickle

    from snaketune.base.jsonutil import digest

    key = digest({"data": Path(next(iter(inputs.data.values()))).name, "estimator": Path(inputs.estimator).name,
                  "params": to_jsonable(params)}, length=20)  # fmt: skip
    path = inputs.root / Path(inputs.estimator).parent / f"refit-{key}.pkl"
    if path.exists():
        with path.open("rb") as handle:
            return pickle.load(handle)  # noqa: S301 - this search's own refit (see _pickle_outside_study)
    model = clone(estimator).set_params(**clone(params, safe=False))
    start = time.time()
    model.fit(X, y)
    elapsed = time.time() - start
    try:
        write_bytes_atomic(path, cloudpickle.dumps((model, elapsed)))
    except Exception:  # noqa: BLE001 - a model that cannot be stored is refitted next time
        pass
    return model, elapsed


def _warn_about_failures(rows: list[list], error_score) -> None:
    """scikit-learn's message when fits failed: a warning, or an error when all of them did."""
    from sklearn.exceptions import FitFailedWarning

    failed = [r for folds in rows for r in folds if r.status.value != "ok"]
    if not failed:
        return
    total = sum(len(folds) for folds in rows)
    first = f"{failed[0].error or failed[0].status.value}"
    if len(failed) == total:
        raise ValueError(f"All the {total} fits failed. First error: {first}")
    warnings.warn(
        f"{len(failed)} fits failed out of a total of {total}. The score on these train-test partitions "
        f"for these parameters will be set to {error_score}. First error: {first}",
        FitFailedWarning,
        stacklevel=3,
    )
