"""The warm worker never runs user code where it can hold up other jobs.

Requests are sent by hand in a fixed order (the slow one first), so the outcome cannot depend on
which job Snakemake happens to start first; each order is repeated with a fresh worker.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import pytest

from snaketune.evaluation.records import RunSettings
from snaketune.runtime import worker
from snaketune.runtime.protocol import recv_message, send_message

pytestmark = pytest.mark.slow

CONFIG = {
    "study": "order",
    "data": {"loader": "iris"},
    "estimator": {"class": "tests.estimators.SleepyClassifier"},
    "allowed_modules": ["tests.estimators"],
    "search": {"grid": {"delay": [0.0, 300.0]}},
    "cv": {"n_splits": 2},
}


def _ask(address: str, specs: list[dict], outputs: list[str], replies: dict, name: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect("\0" + address)
        request = {
            "call": "trials",
            "args": json.dumps({"specs": specs, "outputs": outputs}),
            "threads": "1",
            "settings": RunSettings().to_json(),
            "cwd": os.getcwd(),
        }
        send_message(sock, request)
        sock.settimeout(120)
        replies[name] = (recv_message(sock), time.monotonic())


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A study whose data and splits exist (prepared by real Snakemake), and its plan."""
    from tests.conftest import Study

    workdir = tmp_path_factory.mktemp("order")
    study = Study(workdir, CONFIG)
    study.snakemake("--until", "make_splits")
    return study


@pytest.mark.parametrize("repeat", range(3))
@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("slow_part", ["searched", "fixed"])
def test_a_slow_first_request_delays_only_itself(prepared, monkeypatch, repeat, batched, slow_part):
    from snaketune.workflow.support import load_study
    from tests.conftest import REPO

    monkeypatch.chdir(prepared.workdir)
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # what the Snakefile sets for its jobs
    config = dict(CONFIG, study="order")
    if slow_part == "fixed":  # the estimator itself is slow, whatever the configuration
        config["estimator"] = {"class": "tests.estimators.SleepyClassifier", "params": {"delay": 300.0}}
        config["search"] = {"grid": {"n_neighbors": [3, 5]}}
    study = load_study(config, basedir=".")
    plan = study.plan
    slow_key = plan.config_keys[-1] if slow_part == "searched" else plan.config_keys[0]
    fast_spec = dict(
        plan.spec(f"{plan.config_keys[0]}_0"), estimator={"class": "sklearn.neighbors.KNeighborsClassifier"}
    )
    fast_spec["params"] = {}
    slow_specs = [plan.spec(f"{slow_key}_{k}") for k in range(2 if batched else 1)]
    proc = worker.start(study.out, f"{study.out}/logs/worker-{repeat}.log")
    try:
        address = os.environ[worker.ENV_ADDRESS]
        assert worker.wait_ready(address, timeout=30)
        replies: dict = {}
        tmp = f"{study.out}/tmp-{slow_part}-{batched}-{repeat}"
        slow = threading.Thread(
            target=_ask,
            args=(address, slow_specs, [f"{tmp}/slow_{k}.json" for k in range(len(slow_specs))], replies, "slow"),
            daemon=True,
        )
        t0 = time.monotonic()
        slow.start()
        time.sleep(0.3)  # the slow request is accepted first
        _ask(address, [fast_spec], [f"{tmp}/fast.json"], replies, "fast")
        waited = replies["fast"][1] - t0
        # The fast job is answered while the slow one still runs: at most the bounded warm-up probe
        # (worker.WARM_UP_SECONDS) stands between them.
        assert replies["fast"][0]["status"] == 0, replies["fast"][0]
        assert waited < worker.WARM_UP_SECONDS + 15, waited
        assert "slow" not in replies
        assert json.loads(open(f"{tmp}/fast.json").read())["status"] == "ok"
    finally:
        worker.stop(proc)
