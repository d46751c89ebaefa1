"""A dependency-free training script (numpy only) that snaketune runs as a trial.

A one-hidden-layer network (tanh, softmax) trained by full-batch gradient descent on a generated
two-spirals data set: 600 points, 20 % held out as a test set, the rest split into --folds folds.
--fold k validates on fold k and trains on the others; --fold all trains on every training row
and reports the held-out test set (the refit). With --checkpoint DIR the model is saved there
and, when DIR already holds one, training continues from it up to --epochs (so a model that
Hyperband promotes resumes instead of restarting). Writes a JSON of metrics to --out:
val_accuracy, val_loss, and epochs_run (epochs trained by this call). An epoch is --steps
full-batch gradient steps.

    python train.py --lr 0.3 --hidden 16 --epochs 200 --steps 10 --fold 0 --out metrics.json
"""

import argparse
import json
import os

import numpy as np


def spirals(n=600, noise=0.25, seed=0):
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.uniform(0, 1, n)) * 3 * np.pi
    label = rng.integers(0, 2, n)
    sign = np.where(label == 1, 1.0, -1.0)
    X = np.c_[sign * t * np.cos(t), sign * t * np.sin(t)] / (3 * np.pi) + rng.normal(0, noise / 3, (n, 2))
    return X, label


def split(n_folds, fold, seed=0):
    """Rows to train on and to score on: fold k of the training part, or all of it vs the test."""
    X, y = spirals(seed=seed)
    order = np.random.default_rng(seed + 1).permutation(len(y))
    test, rest = order[: len(y) // 5], order[len(y) // 5 :]
    if fold == "all":
        return X[rest], y[rest], X[test], y[test]
    held = rest[int(fold) :: n_folds]
    train = np.setdiff1d(rest, held)
    return X[train], y[train], X[held], y[held]


def init(hidden, seed):
    rng = np.random.default_rng([seed, hidden])
    return {
        "W1": rng.normal(0, 1, (2, hidden)),
        "b1": np.zeros(hidden),
        "W2": rng.normal(0, 1 / np.sqrt(hidden), (hidden, 2)),
        "b2": np.zeros(2),
    }


def forward(p, X):
    h = np.tanh(X @ p["W1"] + p["b1"])
    z = h @ p["W2"] + p["b2"]
    z = z - z.max(axis=1, keepdims=True)
    prob = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return h, prob


def step(p, X, y, lr, l2):
    h, prob = forward(p, X)
    d = prob.copy()
    d[np.arange(len(y)), y] -= 1
    d /= len(y)
    dh = (d @ p["W2"].T) * (1 - h**2)
    grads = {"W2": h.T @ d + l2 * p["W2"], "b2": d.sum(0), "W1": X.T @ dh + l2 * p["W1"], "b1": dh.sum(0)}
    for k in p:
        p[k] -= lr * grads[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--hidden", type=int, required=True)
    ap.add_argument("--l2", type=float, default=0.0)
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--steps", type=int, default=1, help="gradient steps per epoch (full batch)")
    ap.add_argument("--fold", required=True)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoint")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    X, y, Xv, yv = split(a.folds, a.fold)
    params, done = init(a.hidden, a.seed), 0
    saved = os.path.join(a.checkpoint, "model.npz") if a.checkpoint else None
    if saved and os.path.exists(saved):
        state = np.load(saved)
        params = {k: state[k] for k in ("W1", "b1", "W2", "b2")}
        done = int(state["epochs"])
    for _ in range((a.epochs - done) * a.steps):
        step(params, X, y, a.lr, a.l2)
    if saved:
        np.savez(saved, epochs=max(done, a.epochs), **params)
    _, prob = forward(params, Xv)
    metrics = {
        "val_accuracy": float((prob.argmax(1) == yv).mean()),
        "val_loss": float(-np.log(np.clip(prob[np.arange(len(yv)), yv], 1e-12, None)).mean()),
        "epochs_run": max(0, a.epochs - done),
    }
    print(f"trained epochs {done} -> {max(done, a.epochs)}: {metrics}")
    with open(a.out, "w") as fh:
        json.dump(metrics, fh)


if __name__ == "__main__":
    main()
