"""Data sources and the prepared, memory-mappable files every trial reads."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from snaketune.base.jsonutil import file_sha256, write_json_atomic


def make_circles(
    n_samples: int = 100,
    *,
    n_classes: int = 2,
    n_features: int = 2,
    n_informative: int = 2,
    noise: float = 0.0,
    factor: float = 0.8,
    shuffle: bool = True,
    random_state: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Concentric circles with any number of classes and extra uninformative features.

    With ``n_classes=2, n_features=2`` it draws like ``sklearn.datasets.make_circles``
    (class ``k`` on a circle of radius ``factor**k``). Extra features are Gaussian noise, so
    the seed's ``make_circles(n_classes=4, n_features=6, n_informative=2)`` is expressible.
    """
    if n_informative != 2:
        raise ValueError("make_circles: n_informative must be 2 (the circles live in a plane)")
    if n_features < n_informative:
        raise ValueError("make_circles: n_features must be >= n_informative")
    rng = np.random.default_rng(random_state)
    y = np.arange(n_samples) % n_classes
    angle = rng.uniform(0, 2 * np.pi, n_samples)
    radius = factor ** y.astype(float)
    X = np.empty((n_samples, n_features))
    X[:, 0] = radius * np.cos(angle)
    X[:, 1] = radius * np.sin(angle)
    X[:, :2] += rng.normal(scale=noise, size=(n_samples, 2)) if noise else 0.0
    X[:, 2:] = rng.normal(size=(n_samples, n_features - 2))
    if shuffle:
        order = rng.permutation(n_samples)
        X, y = X[order], y[order]
    return X, y


def read_table(data: dict, basedir: Path) -> Any:
    """Read a CSV or Parquet source into a pandas DataFrame."""
    import pandas as pd

    if "csv" in data:
        return pd.read_csv(basedir / data["csv"])
    return pd.read_parquet(basedir / data["parquet"])


@dataclass
class Source:
    """A data source as loaded, before the held-out split.

    ``X`` is a float array for loaders and generators, and a DataFrame with the table's own
    column names and dtypes for CSV/Parquet sources (so a ``ColumnTransformer`` selects columns
    by name or dtype). ``groups`` holds integer group codes (in the sorted order of the original
    labels, so group-aware splitters see the same groups in the same order) or ``None``.
    """

    X: Any
    y: np.ndarray
    feature_names: list[str]
    classes: list
    groups: np.ndarray | None = None
    # False for X alone (a search's fit(X) without y): ``y`` is a placeholder no trial sees.
    supervised: bool = True


def feature_columns(data: dict, columns) -> list:
    """The feature columns of a table: ``data.features``, else all but target and groups."""
    if data.get("features"):
        return list(data["features"])
    return [c for c in columns if c not in (data["target"], data.get("groups"))]


def label_codes(values: np.ndarray) -> tuple[list, np.ndarray]:
    """Sorted distinct labels and each value's code (non-numeric labels compared as text)."""
    values = np.asarray(values)
    if values.dtype.kind not in "biuf":
        values = values.astype(str)
    labels, codes = np.unique(values, return_inverse=True)
    return labels.tolist(), codes


def load_dataset(data: dict, basedir: Path) -> Source:
    """Load the raw source named by the config's ``data`` section (see :class:`Source`)."""
    if "loader" in data:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, f"load_{data['loader']}")()
        names = list(getattr(bunch, "feature_names", [])) or [f"x{i}" for i in range(bunch.data.shape[1])]
        return Source(np.asarray(bunch.data, dtype=float), np.asarray(bunch.target), names, [])
    if "generator" in data:
        params = dict(data.get("params", {}))
        if data["generator"] == "make_circles" and {"n_classes", "n_features", "n_informative"} & set(params):
            generate = make_circles
        else:
            import sklearn.datasets

            generate = getattr(sklearn.datasets, data["generator"])
        params.setdefault("random_state", data.get("seed", 0))
        X, y = generate(**params)[:2]
        return Source(np.asarray(X, dtype=float), np.asarray(y), [f"x{i}" for i in range(X.shape[1])], [])
    if "arrays" in data:  # X and y as given to snaketune.GridSearchCV.fit
        with np.load(Path(basedir) / data["arrays"]) as npz:
            X, y = npz["X"], (npz["y"] if "y" in npz.files else None)
        names = [f"x{i}" for i in range(X.shape[1])]
        if y is None:  # unsupervised: float zeros (no classes to stratify or count) stand in for y
            return Source(X, np.zeros(len(X)), names, [], supervised=False)
        return Source(X, y, names, [])
    frame = read_table(data, basedir)
    y = frame[data["target"]].to_numpy()
    classes: list = []
    if y.dtype.kind not in "biuf":
        classes, y = label_codes(y)
    groups = label_codes(frame[data["groups"]].to_numpy())[1] if data.get("groups") else None
    X = frame[feature_columns(data, frame.columns)].reset_index(drop=True)
    return Source(X, y, [str(c) for c in X.columns], classes, groups)


def take_rows(X, rows):
    """Rows of an array or (by position) of a DataFrame."""
    return X.iloc[rows] if hasattr(X, "iloc") else X[rows]


def holdout(source: Source, data: dict, classification: bool, ordered: bool = False):
    """Row indices ``(train, test)`` of the held-out split (``data.test_size``; all rows train at 0).

    ``ordered`` (time-series CV) holds out the last rows; with groups, whole groups are held out
    (``GroupShuffleSplit``), so no group is on both sides; otherwise a shuffled split,
    stratified by class for classification targets.
    """
    n = len(source.y)
    rows = np.arange(n)
    test_size = data.get("test_size", 0)
    if not test_size:
        return rows, rows[:0]
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    seed = data.get("seed", 0)
    if ordered:
        return tuple(train_test_split(rows, test_size=test_size, shuffle=False))
    if source.groups is not None:
        splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
        train, test = next(splitter.split(rows, source.y, source.groups))
        return np.sort(train), np.sort(test)
    stratify = source.y if classification else None
    return tuple(train_test_split(rows, test_size=test_size, random_state=seed, stratify=stratify))


def is_table(data: dict) -> bool:
    """Whether the source is a table (stored as Arrow files, seen by estimators as a DataFrame)."""
    return "csv" in data or "parquet" in data


def stored_files(data: dict) -> list[str]:
    """Names of the files :func:`prepare` writes for this source, in its data folder."""
    x = ("X.arrow", "X_test.arrow") if is_table(data) else ("X.npy", "X_test.npy")
    groups = ["groups.npy"] if data.get("groups") else []
    return [x[0], "y.npy", x[1], "y_test.npy", *groups, "meta.json"]


def is_classification(y: np.ndarray, task: str | None = None) -> bool:
    """Whether the target holds classes: the estimator's ``task`` decides (see
    ``base.estimator.estimator_task``), as ``check_cv`` asks ``is_classifier``; an integer price
    with a regressor is a regression target. Only when the estimator says neither (``task`` None)
    the target itself: integer, boolean or label targets that ``type_of_target`` calls binary or
    multiclass (it alone calls whole-number floats, such as diabetes', "multiclass").
    """
    if task is not None:
        return task == "classification"
    from sklearn.utils.multiclass import type_of_target

    return y.dtype.kind in "biuUSO" and type_of_target(y) in ("binary", "multiclass")


def prepare(data: dict, basedir: Path, out_dir: Path, ordered: bool = False, task: str | None = None) -> dict:
    """Load the source once, hold out the test set (see :func:`holdout`), write the files.

    ``task`` is the estimator's (:func:`is_classification`): only a classification target's
    held-out split is stratified.

    Arrays go to ``.npy`` files; a table's features to uncompressed Arrow IPC files (``.arrow``),
    which trials open memory-mapped. Groups (codes, training rows) go to ``groups.npy``. The
    fingerprint is the sha256 of the written files' bytes; trials record it.
    """
    source = load_dataset(data, Path(basedir))
    y = source.y
    classification = is_classification(y, task)
    train, test = holdout(source, data, classification, ordered)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = stored_files(data)
    arrays = {"y": y[train], "y_test": y[test]}
    if source.groups is not None:
        arrays["groups"] = source.groups[train]
    if is_table(data):
        _write_frame(take_rows(source.X, train), out_dir / "X.arrow")
        _write_frame(take_rows(source.X, test), out_dir / "X_test.arrow")
    else:
        arrays.update(X=source.X[train], X_test=source.X[test])
    for name, array in arrays.items():
        # Temp file + rename: a worker's memory map of the old file stays valid (new inode).
        tmp = out_dir / f".{name}.tmp.npy"
        np.save(tmp, np.ascontiguousarray(array))
        os.replace(tmp, out_dir / f"{name}.npy")
    fingerprint = _fingerprint(out_dir, [f for f in files if f != "meta.json"])
    y_train = arrays["y"]
    meta = {
        "fingerprint": fingerprint,
        "n_samples": int(len(train)),
        "n_features": len(source.feature_names),
        "n_test": int(len(test)),
        "feature_names": source.feature_names,
        "classification": bool(classification),
        "classes": source.classes,
        "class_counts": (
            {str(k): int(v) for k, v in zip(*np.unique(y_train, return_counts=True), strict=True)}
            if classification
            else {}
        ),
    }
    if is_table(data):
        meta["format"] = "table"
        meta["dtypes"] = {str(c): str(t) for c, t in source.X.dtypes.items()}
    if source.groups is not None:
        meta["n_groups"] = int(len(np.unique(arrays["groups"])))
    if not source.supervised:
        meta["supervised"] = False  # trials fit and score with y=None
    write_json_atomic(out_dir / "meta.json", meta)
    return meta


def _write_frame(frame, path: Path) -> None:
    """Write a DataFrame as an uncompressed Arrow IPC file (memory-mappable), atomically."""
    import pyarrow as pa
    import pyarrow.feather as feather

    tmp = path.with_name(f".{path.name}.tmp")
    feather.write_feather(pa.Table.from_pandas(frame, preserve_index=False), tmp, compression="uncompressed")
    os.replace(tmp, path)


def read_frame(path: str | Path):
    """A DataFrame written by :func:`_write_frame`, read through a memory map."""
    import pyarrow.feather as feather

    return feather.read_table(path, memory_map=True).to_pandas()


def _fingerprint(out_dir: Path, names=("X.npy", "y.npy", "X_test.npy", "y_test.npy")) -> str:
    import hashlib

    h = hashlib.sha256()
    for name in names:
        h.update(file_sha256(out_dir / name).encode())
    return h.hexdigest()


def load_prepared(data_dir: str | Path, mmap: bool = True) -> dict:
    """Open the prepared data (arrays memory-mapped) and their metadata."""
    data_dir = Path(data_dir)
    mode = "r" if mmap else None
    meta = json.loads((data_dir / "meta.json").read_text())
    arrays = {name: np.load(data_dir / f"{name}.npy", mmap_mode=mode) for name in ("y", "y_test")}
    for name in ("X", "X_test"):
        if meta.get("format") == "table":
            arrays[name] = read_frame(data_dir / f"{name}.arrow")
        else:
            arrays[name] = np.load(data_dir / f"{name}.npy", mmap_mode=mode)
    arrays["meta"] = meta
    return arrays


def source_digest(data: dict, basedir: Path) -> dict:
    """What identifies the data at parse time: the spec plus, for files, their sha256."""
    spec = {k: v for k, v in data.items()}
    for key in ("csv", "parquet", "arrays"):
        if key in data:
            spec[f"{key}_sha256"] = file_sha256(Path(basedir) / data[key])
    return spec
