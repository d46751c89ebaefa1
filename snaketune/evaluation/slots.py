"""Slots of an adaptive search: promotion between rungs, and what a promoted slot trains.

Slot ``j`` of rung ``i > 0`` trains the ``j``-th survivor of rung ``i - 1``, read from that
rung's promotion file at run time; each of its folds is an ordinary trial (see
:mod:`snaketune.evaluation.trial`) that continues the same fold's model of the previous rung.

Promotion ranks a rung's slots by the mean over folds of the refit metric, descending (failed
folds count as -inf), then config key, then model id: deterministic, so a rerun promotes the same
models.
"""

from __future__ import annotations

import json
import math
import pickle
import shutil
from dataclasses import replace
from pathlib import Path

from snaketune.base.jsonutil import write_json_atomic
from snaketune.evaluation.command import checkpoint_dir
from snaketune.evaluation.records import TrialRecord, TrialSpec, read_record, read_records, state_path

TIE_RULE = "mean test score of the refit metric descending (failed last), then config_key, then model_id ascending"


def slot_score(records: list[TrialRecord], refit: str) -> float:
    """Mean of the refit metric over a slot's folds; -inf if any fold failed or timed out."""
    scores = [r.test_scores.get(refit) if r.ok else None for r in records]
    if any(s is None or math.isnan(s) for s in scores):
        return -math.inf
    return float(sum(scores) / len(scores))


def rank_key(records: list[TrialRecord], refit: str):
    """Sort key of the documented promotion rule (see :data:`TIE_RULE`)."""
    return (-slot_score(records, refit), records[0].config_key, records[0].model_id)


def promote(slots: list[list[str]], keep: int, refit: str, output: str) -> dict:
    """Rank a rung's slots (each a list of its fold trial files) and write the ``keep`` best.

    Slot ``j`` of the next rung trains ``survivors[j]``, fold by fold.
    """
    ranked = []
    for paths in slots:
        records = [read_records([p])[Path(p).stem] for p in paths]
        ranked.append((paths, records))
    ranked.sort(key=lambda pr: rank_key(pr[1], refit))

    def score(records):
        s = slot_score(records, refit)
        return None if math.isinf(s) else s

    survivors = [
        {
            "model_id": records[0].model_id,
            "config_key": records[0].config_key,
            "params": records[0].params,
            "score": score(records),
            "units": records[0].budget,
            "stopped": all(r.stopped for r in records),
            "results": list(paths),
            "states": [str(state_path(p)) for p in paths],
        }
        for paths, records in ranked[:keep]
    ]
    doc = {
        "rule": TIE_RULE,
        "refit": refit,
        "keep": keep,
        "survivors": survivors,
        "ranking": [
            {"model_id": records[0].model_id, "config_key": records[0].config_key, "score": score(records)}
            for _, records in ranked
        ],
    }
    write_json_atomic(output, doc)
    return doc


def resolve_slot(spec: TrialSpec, output) -> TrialRecord | tuple[TrialSpec, tuple | None]:
    """The candidate of a promoted slot's fold, and where its model starts (None: from scratch,
    a first-rung slot whose configuration a strategy's step proposed at run time).

    Returns either a finished record (the survivor failed, timed out or stopped on a plateau
    on this fold: it keeps its place and score and trains no further) or ``(spec, (state,
    done, history))`` with the spec's candidate filled in, for :func:`run_trial` to continue.
    """
    spec, entry = with_candidate(spec)
    if "results" not in entry:
        return spec, None  # a configuration proposed for a first rung: trained from scratch
    previous = read_record(entry["results"][spec.fold])
    previous_state = entry["states"][spec.fold]
    if not previous.ok or previous.stopped:
        copy_atomic(previous_state, state_path(output))
        return relabel(previous, spec, carried=True, units_trained=0)
    if spec.command is not None:  # the command resumes from a copy of that trial's checkpoint folder
        return spec, (checkpoint_dir(entry["results"][spec.fold]), previous.budget, previous.history)
    if spec.budget.resource == "partial_fit":
        with open(previous_state, "rb") as fh:
            state = pickle.load(fh)  # a model this study trained and saved itself
        return spec, (state, previous.budget, previous.history)
    return spec, (None, 0, previous.history)  # n_samples: refit from scratch on more rows


def with_candidate(spec: TrialSpec) -> tuple[TrialSpec, dict]:
    """``spec`` with the candidate its promotion file assigns to its slot, and that entry."""
    entry = json.loads(Path(spec.slot.promotion).read_text())["survivors"][spec.slot.slot]
    spec = replace(
        spec,
        config_key=entry["config_key"],
        params=entry["params"],
        slot=replace(spec.slot, model_id=entry["model_id"]),
    )
    return spec, entry


def relabel(record: TrialRecord, spec: TrialSpec, **changes) -> TrialRecord:
    """``record`` as the record of ``spec``'s slot and fold (a carried or reused evaluation)."""
    slot = spec.slot
    return replace(
        record,
        trial_id=spec.trial_id,
        model_id=slot.model_id,
        bracket=slot.bracket,
        rung=slot.rung,
        slot=slot.slot,
        **changes,
    )


def copy_atomic(source, target) -> None:
    target = Path(target)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, tmp)
    tmp.replace(target)
