"""Data sources and the prepared, memory-mappable arrays every trial reads."""

from __future__ import annotations

import json
import os
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


def load_source(data: dict, basedir: Path) -> tuple[np.ndarray, np.ndarray, list[str], list]:
    """Load the raw source named by the config's ``data`` section.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,)
    feature_names : list of str
    classes : list
        Original labels when a non-numeric target was encoded as integers, else ``[]``.
    """
    if "loader" in data:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, f"load_{data['loader']}")()
        names = list(getattr(bunch, "feature_names", [])) or [f"x{i}" for i in range(bunch.data.shape[1])]
        return np.asarray(bunch.data, dtype=float), np.asarray(bunch.target), names, []
    if "generator" in data:
        params = dict(data.get("params", {}))
        if data["generator"] == "make_circles" and {"n_classes", "n_features", "n_informative"} & set(params):
            generate = make_circles
        else:
            import sklearn.datasets

            generate = getattr(sklearn.datasets, data["generator"])
        params.setdefault("random_state", data.get("seed", 0))
        X, y = generate(**params)[:2]
        return np.asarray(X, dtype=float), np.asarray(y), [f"x{i}" for i in range(X.shape[1])], []
    frame = read_table(data, basedir)
    target = data["target"]
    y = frame[target].to_numpy()
    features = frame.drop(columns=[target])
    X = features.to_numpy(dtype=float)
    classes: list = []
    if y.dtype.kind not in "biuf":
        classes, y = np.unique(y.astype(str), return_inverse=True)
        classes = classes.tolist()
    return X, y, [str(c) for c in features.columns], classes


def is_classification(y: np.ndarray) -> bool:
    """True for integer, boolean or label targets; float targets are regression targets.

    ``type_of_target`` alone calls whole-number floats (diabetes) "multiclass".
    """
    from sklearn.utils.multiclass import type_of_target

    return y.dtype.kind in "biuUSO" and type_of_target(y) in ("binary", "multiclass")


def prepare(data: dict, basedir: Path, out_dir: Path) -> dict:
    """Load the source once, hold out the test set, write ``.npy`` arrays and ``meta.json``.

    The fingerprint is the sha256 of the written arrays' bytes; trials record it.
    """
    X, y, feature_names, classes = load_source(data, Path(basedir))
    classification = is_classification(y)
    X_test, y_test = X[:0], y[:0]
    if data.get("test_size", 0):
        from sklearn.model_selection import train_test_split

        X, X_test, y, y_test = train_test_split(
            X,
            y,
            test_size=data["test_size"],
            random_state=data.get("seed", 0),
            stratify=y if classification else None,
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    arrays = {"X": X, "y": y, "X_test": X_test, "y_test": y_test}
    for name, array in arrays.items():
        # Temp file + rename: a worker's memory map of the old file stays valid (new inode).
        tmp = out_dir / f".{name}.tmp.npy"
        np.save(tmp, np.ascontiguousarray(array))
        os.replace(tmp, out_dir / f"{name}.npy")
    fingerprint = _fingerprint(out_dir)
    meta = {
        "fingerprint": fingerprint,
        "n_samples": int(X.shape[0]),
        "n_features": int(X.shape[1]),
        "n_test": int(X_test.shape[0]),
        "feature_names": feature_names,
        "classification": bool(classification),
        "classes": classes,
        "class_counts": (
            {str(k): int(v) for k, v in zip(*np.unique(y, return_counts=True), strict=True)} if classification else {}
        ),
    }
    write_json_atomic(out_dir / "meta.json", meta)
    return meta


def _fingerprint(out_dir: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    for name in ("X", "y", "X_test", "y_test"):
        h.update(file_sha256(out_dir / f"{name}.npy").encode())
    return h.hexdigest()


def load_prepared(data_dir: str | Path, mmap: bool = True) -> dict:
    """Open the prepared arrays (memory-mapped) and their metadata."""
    data_dir = Path(data_dir)
    mode = "r" if mmap else None
    arrays = {name: np.load(data_dir / f"{name}.npy", mmap_mode=mode) for name in ("X", "y", "X_test", "y_test")}
    arrays["meta"] = json.loads((data_dir / "meta.json").read_text())
    return arrays


def source_digest(data: dict, basedir: Path) -> dict:
    """What identifies the data at parse time: the spec plus, for files, their sha256."""
    spec = {k: v for k, v in data.items()}
    for key in ("csv", "parquet"):
        if key in data:
            spec[f"{key}_sha256"] = file_sha256(Path(basedir) / data[key])
    return spec
