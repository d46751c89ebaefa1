"""Cross-validation splits, computed once per study and stored so every trial sees the same folds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Kinds that split by data.groups (GridSearchCV's ``groups``); time_series keeps rows in file order.
GROUP_KINDS = ("group_kfold", "stratified_group_kfold", "leave_one_group_out")
# Kinds that stratify by class without groups (refused for a regressor).
STRATIFIED_KINDS = ("stratified", "repeated_stratified", "stratified_shuffle_split")
# cv.test_size had the schema default 0.2 before time_series gave it a second meaning (a number of
# rows); the kinds that existed then keep it in their identity, so their trials keep their names.
_OLD_TEST_SIZE = 0.2


def n_folds(cv: dict, n_groups: int | None = None, basedir: str | Path = ".") -> int:
    """Number of (train, test) splits the CV scheme yields.

    Known without the data, except for ``leave_one_group_out``: one split per group of the
    training rows (``n_groups``). A fold file's path is relative to ``basedir``.
    """
    if cv["kind"] in ("repeated_kfold", "repeated_stratified"):
        return cv["n_splits"] * cv["n_repeats"]
    if cv["kind"] == "folds":
        with np.load(Path(basedir) / cv["file"]) as npz:
            return len(npz.files) // 2
    if cv["kind"] == "leave_one_group_out":
        if n_groups is None:
            raise ValueError("cv.kind: leave_one_group_out needs the number of groups")
        return n_groups
    return cv["n_splits"]


def ordered(cv: dict) -> bool:
    """Whether rows keep their file order (time series): the held-out test set is then the last rows."""
    return cv["kind"] == "time_series"


def cv_identity(cv: dict, basedir: str | Path = ".") -> dict:
    """What names a CV scheme in content hashes (see ``_OLD_TEST_SIZE``). A fold file is named by
    its content, not its path: rewritten in place, its trials are new; moved, they are the same."""
    if cv["kind"] == "folds":
        from snaketune.base.jsonutil import file_sha256

        return {k: v for k, v in cv.items() if k != "file"} | {"file_sha256": file_sha256(Path(basedir) / cv["file"])}
    if cv["kind"] in GROUP_KINDS or cv["kind"] == "time_series" or "test_size" in cv:
        return dict(cv)
    return dict(cv, test_size=_OLD_TEST_SIZE)


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
        return ms.ShuffleSplit(cv["n_splits"], test_size=cv.get("test_size", _OLD_TEST_SIZE), random_state=seed)
    if kind == "stratified_shuffle_split":
        return ms.StratifiedShuffleSplit(
            cv["n_splits"], test_size=cv.get("test_size", _OLD_TEST_SIZE), random_state=seed
        )
    if kind == "group_kfold":
        return ms.GroupKFold(cv["n_splits"], shuffle=shuffle, random_state=seed if shuffle else None)
    if kind == "stratified_group_kfold":
        return ms.StratifiedGroupKFold(cv["n_splits"], shuffle=shuffle, random_state=seed if shuffle else None)
    if kind == "leave_one_group_out":
        return ms.LeaveOneGroupOut()
    if kind == "time_series":
        return ms.TimeSeriesSplit(
            cv["n_splits"],
            max_train_size=cv.get("max_train_size"),
            test_size=cv.get("test_size"),
            gap=cv.get("gap", 0),
        )
    raise ValueError(f"cv.kind: unknown splitter {kind!r}")


def compute_splits(
    cv: dict, y: np.ndarray, classifier: bool, groups: np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """All (train, test) index arrays of the scheme, in the splitter's order.

    ``groups`` reaches the splitter as in ``GridSearchCV.fit(X, y, groups=groups)``.
    """
    if cv["kind"] == "folds":  # explicit splits, stored as scikit-learn gave them
        return load_splits(cv["file"])
    splitter = make_splitter(cv, classifier)
    X_dummy = np.zeros((len(y), 1))
    return [(np.asarray(tr), np.asarray(te)) for tr, te in splitter.split(X_dummy, y, groups)]


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
