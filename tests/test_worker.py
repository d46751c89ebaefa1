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
from tests.configs import iris

pytestmark = pytest.mark.slow

CONFIG = iris("order", "tests.estimators.SleepyClassifier", {"grid": {"delay": [0.0, 300.0]}}, n_splits=2)


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
        try:
            replies[name] = (recv_message(sock), time.monotonic())
        except ConnectionError as exc:  # the slow request, cut when the test stops the worker
            replies[f"{name} cut"] = (str(exc), time.monotonic())


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


# --- what the worker refuses ------------------------------------------------------------------


def _send(address: str, request: dict) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect("\0" + address)
        send_message(sock, request)
        sock.settimeout(60)
        return recv_message(sock)


def _as_peer(address: str, request: dict) -> dict:
    """Send ``request`` as the throwaway user (tests/peers.py); return the reply and its uid."""
    from tests.peers import as_peer

    def ask() -> bytes:
        return json.dumps({**_send(address, request), "uid": os.getuid()}).encode()

    out = as_peer(ask)
    assert not out.startswith(b"child error"), out
    return json.loads(out)


@pytest.mark.parametrize("how", ["start", "start_forked"])  # a new Python (plain runs); forked (the engine's runs)
def test_worker_refuses_other_folders_cwd_and_users_and_keeps_serving(prepared, monkeypatch, tmp_path, how):
    from snaketune.workflow.support import load_study
    from tests.conftest import REPO

    monkeypatch.chdir(prepared.workdir)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    study = load_study(dict(CONFIG), basedir=".")
    plan = study.plan
    spec = dict(plan.spec(f"{plan.config_keys[0]}_0"))  # delay 0: a fast trial
    out = study.out
    proc = getattr(worker, how)(out, f"{out}/logs/worker-refusals.log")
    try:
        address = os.environ[worker.ENV_ADDRESS]
        assert worker.wait_ready(address, timeout=30)

        def request(outputs, **changes):
            return {
                "call": "trials",
                "args": json.dumps({"specs": [spec] * len(outputs), "outputs": outputs}),
                "threads": "1",
                "settings": RunSettings().to_json(),
                "cwd": os.getcwd(),
                **changes,
            }

        outside = [
            str(tmp_path / "elsewhere.json"),  # an absolute path elsewhere
            f"{out}/../other-study/trials/x.json",  # up and out of the study folder
            f"{out}-evil/trials/x.json",  # a sibling whose name starts like the study's
        ]
        for path in outside:
            reply = _send(address, request([path]))
            assert "refused" in reply and "inside" in reply["refused"], reply
            assert "status" not in reply
            assert not os.path.exists(path)
        # One output inside and one outside: refused as a whole, nothing written.
        inside = f"{out}/tmp-refusal-{how}/inside.json"  # one each: the module shares the study
        reply = _send(address, request([inside, outside[0]]))
        assert "refused" in reply, reply
        assert not os.path.exists(inside)

        # Another working folder (another study's run in another directory).
        reply = _send(address, request([inside], cwd=str(tmp_path)))
        assert reply == {"refused": f"worker serves {os.getcwd()}, not {tmp_path}"}, reply
        assert not os.path.exists(inside)

        # Another user (root can act as one; CI runs as root): the abstract socket has no
        # permissions, the worker checks SO_PEERCRED.
        if os.getuid() == 0:
            reply = _as_peer(address, request([inside]))
            assert reply["uid"] != os.getuid()
            assert reply.get("refused") == f"worker serves uid {os.getuid()} only", reply
            assert not os.path.exists(inside)

        # ... and it keeps serving its own study.
        assert proc.poll() is None
        reply = _send(address, request([inside]))
        assert reply["status"] == 0, reply
        record = json.loads(open(inside).read())
        assert record["status"] == "ok" and record["trial_id"] == spec["trial_id"]
    finally:
        worker.stop(proc)
