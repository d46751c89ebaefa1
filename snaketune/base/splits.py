"""Cross-validation splits, computed once per study and stored so every trial sees the same folds."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def n_folds(cv: dict) -> int:
    """Number of (train, test) splits the CV scheme yields — known without the data."""
    if cv["kind"] in ("repeated_kfold", "repeated_stratified"):
        return cv["n_splits"] * cv["n_repeats"]
    return cv["n_splits"]


def make_splitter(cv: dict, classifier: bool):
    """Build the scikit-learn splitter for the config's ``cv`` section.

    ``kind: auto`` follows ``check_cv``: stratified for a classifier, plain k-fold otherwise.
    """
    from sklearn import model_selection as ms

    kind = cv["kind"]
    if kind == "auto":
        kind = "stratified" if classifier else "kfold"
    seed = cv.get("seed", 0)
    shuffle = cv.get("shuffle", False)
    if kind == "kfold":
        return ms.KFold(cv["n_splits"], shuffle=shuffle, random_state=seed if shuffle else None)
    if kind == "stratified":
        return ms.StratifiedKFold(cv["n_splits"], shuffle=shuffle, random_state=seed if shuffle else None)
    if kind == "repeated_kfold":
        return ms.RepeatedKFold(n_splits=cv["n_splits"], n_repeats=cv["n_repeats"], random_state=seed)
    if kind == "repeated_stratified":
        return ms.RepeatedStratifiedKFold(n_splits=cv["n_splits"], n_repeats=cv["n_repeats"], random_state=seed)
    if kind == "shuffle_split":
        return ms.ShuffleSplit(cv["n_splits"], test_size=cv["test_size"], random_state=seed)
    if kind == "stratified_shuffle_split":
        return ms.StratifiedShuffleSplit(cv["n_splits"], test_size=cv["test_size"], random_state=seed)
    raise ValueError(f"cv.kind: unknown splitter {kind!r}")


def compute_splits(cv: dict, y: np.ndarray, classifier: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """All (train, test) index arrays of the scheme, in the splitter's order."""
    splitter = make_splitter(cv, classifier)
    X_dummy = np.zeros((len(y), 1))
    return [(np.asarray(tr), np.asarray(te)) for tr, te in splitter.split(X_dummy, y)]


def save_splits(path: str | Path, splits) -> None:
    """Store splits as one ``.npz`` (``train_<k>``, ``test_<k>``), written atomically."""
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for k, (train, test) in enumerate(splits):
        arrays[f"train_{k}"] = train
        arrays[f"test_{k}"] = test
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_splits(path: str | Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Read splits written by :func:`save_splits`."""
    with np.load(path) as npz:
        k = len(npz.files) // 2
        return [(npz[f"train_{i}"], npz[f"test_{i}"]) for i in range(k)]
