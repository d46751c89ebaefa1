"""The warm engine: a fit after kill -9 of the engine mid-fit resumes; the engine ends with its parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from sklearn import model_selection as ms
from sklearn.datasets import load_digits
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import SVC

import snaketune
from snaketune import engine


def trial_mtimes(study_dir) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in study_dir.glob("results/search-*/trials/*.json")}


def slow_svc():
    """SVC behind a step that waits 50 ms at each fit and transform (a lambda defined here, so
    pickled by value, as a notebook's): ~0.1 s a trial at little CPU, so the trials the fit's own
    process runs while its engine starts, and a run of its trials on forks, leave the run trials
    to stop."""
    return Pipeline([("wait", FunctionTransformer(lambda X: (time.sleep(0.05), X)[1])), ("svc", SVC())])


def run_trials(study_dir, fitting: int | None = None) -> list:
    """Trial files written by another process than the fitting one (by the run's jobs)."""
    pids = [json.loads(p.read_text())["pid"] for p in study_dir.glob("results/search-*/trials/*.json")]
    return [pid for pid in pids if pid != (fitting or os.getpid())]


@pytest.mark.slow
def test_kill_9_of_the_engine_mid_fit_then_fit_again_resumes(tmp_path):
    X, y = load_digits(return_X_y=True)
    X, y = X[:600], y[:600]
    grid = {"svc__C": [0.1, 0.3, 1.0, 3.0, 10.0, 30.0], "svc__gamma": [1e-4, 3e-4, 1e-3, 3e-3]}  # 24 x 3 = 72 trials
    cv = ms.StratifiedKFold(3, shuffle=True, random_state=0)

    def search():
        return snaketune.GridSearchCV(slow_svc(), grid, cv=cv, n_jobs=2, study_dir=tmp_path)

    engine.stop()  # the first fit starts its engine (an earlier test's may still be up)
    outcome = {}

    def first_fit():
        try:
            search().fit(X, y)
            outcome["finished"] = True
        except engine.EngineLost as exc:
            outcome["lost"] = exc

    thread = threading.Thread(target=first_fit)
    thread.start()
    deadline = time.monotonic() + 240
    # Mid-run: 6 trials written by the run's jobs (not those this process ran while the engine started).
    while len(run_trials(tmp_path)) < 6 and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(engine.engine_pid(), signal.SIGKILL)
    thread.join(240)
    assert not thread.is_alive()
    assert "lost" in outcome, outcome  # the run did not finish: it was stopped with its engine
    kept = trial_mtimes(tmp_path)
    assert 6 <= len(kept) < 72

    ours = search().fit(X, y)  # a new engine; only the missing trials run
    after = trial_mtimes(tmp_path)
    assert len(after) == 72
    # Trials this process ran while the engine started and the run's are the same records: the
    # same prepared data (fingerprint), rows and fields.
    records = [json.loads(p.read_text()) for p in tmp_path.glob("results/search-*/trials/*.json")]
    here = [r for r in records if r["pid"] == os.getpid()]
    assert 0 < len(here) < 72
    assert len({(r["data_fingerprint"], r["n_train"] + r["n_test"], tuple(sorted(r))) for r in records}) == 1
    assert {k: after[k] for k in kept} == kept
    theirs = ms.GridSearchCV(slow_svc(), grid, cv=cv, n_jobs=2).fit(X, y)
    for key in (k for k in theirs.cv_results_ if "_test_" in k):
        np.testing.assert_allclose(ours.cv_results_[key], theirs.cv_results_[key], rtol=0, atol=1e-12, err_msg=key)
    assert ours.best_params_ == theirs.best_params_


@pytest.mark.slow
def test_the_engine_ends_with_its_parent(tmp_path):
    script = (
        "import os, snaketune; from snaketune import engine; from sklearn.datasets import load_iris; "
        "from sklearn.svm import SVC; X, y = load_iris(return_X_y=True); "
        "snaketune.GridSearchCV(SVC(), {'C': [1.0]}, cv=2, study_dir=os.environ['STUDY']).fit(X, y); "
        "print('ENGINE', engine.engine_pid())"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, STUDY=str(tmp_path)),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    pid = int(proc.stdout.split("ENGINE")[-1])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}") and "Z" not in _state(pid):
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid}") or "Z" in _state(pid)


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


@pytest.mark.slow
def test_ctrl_c_during_a_fit_stops_the_run_and_keeps_finished_trials(tmp_path):
    script = (
        "import sys, time, snaketune; from sklearn.datasets import load_digits; from sklearn.svm import SVC; "
        "from sklearn.pipeline import Pipeline; from sklearn.preprocessing import FunctionTransformer; "
        "X, y = load_digits(return_X_y=True); "
        "grid = {'svc__C': [0.1, 0.3, 1.0, 3.0, 10.0, 30.0], 'svc__gamma': [1e-4, 3e-4, 1e-3, 3e-3]}; "
        # as slow_svc(): ~0.1 s a trial, so trials are left for the run to stop
        "model = Pipeline([('wait', FunctionTransformer(lambda X: (time.sleep(0.05), X)[1])), ('svc', SVC())]); "
        "snaketune.GridSearchCV(model, grid, cv=3, n_jobs=2, study_dir=sys.argv[1]).fit(X[:600], y[:600])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Ctrl-C as at a terminal: a suite started in the background by a non-interactive shell
        # inherits SIGINT ignored, and Python would keep ignoring it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    deadline = time.monotonic() + 240
    # Mid-run: 6 trials written by the run's jobs (not by the fit's own process).
    while len(run_trials(tmp_path, proc.pid)) < 6 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "KeyboardInterrupt" in out, out[-3000:]
    assert "interrupted" in out  # Snakemake's one line through our terminal logger
    kept = trial_mtimes(tmp_path)
    assert 6 <= len(kept) < 72
    time.sleep(2)
    assert trial_mtimes(tmp_path) == kept  # the run stopped: nothing writes on


def test_an_engine_that_cannot_start_is_a_clear_error_not_a_loop(monkeypatch):
    engine.stop()
    monkeypatch.setenv("SNAKETUNE_ENGINE_IDLE", "not-a-number")  # the engine's own argument parsing fails
    start = time.monotonic()
    with pytest.raises(engine.EngineLost, match=r"(?s)exited with status 1 at start: .*ValueError: could not convert"):
        engine.connect()
    assert time.monotonic() - start < 30
    engine.stop()


def test_a_server_that_is_not_our_engine_is_refused():
    import socket

    engine.stop()
    impostor = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    impostor.bind("\0" + engine.engine_address(os.getpid()))  # this process (same uid), not an engine it started
    impostor.listen(1)
    try:
        with pytest.raises(engine.EngineLost, match=rf"refusing the server .* pid {os.getpid()} "):
            engine.connect()
    finally:
        impostor.close()


@pytest.mark.slow
def test_a_run_has_the_umask_and_environment_of_the_call_not_of_the_engine_start(tmp_path):
    from sklearn.datasets import load_iris

    engine.stop()
    old = os.umask(0o022)
    try:
        engine.connect().close()  # the engine starts under umask 022
        os.umask(0o077)
        X, y = load_iris(return_X_y=True)
        snaketune.GridSearchCV(SVC(), {"C": [1.0]}, cv=2, study_dir=tmp_path).fit(X, y)
    finally:
        os.umask(old)
    trials = list(tmp_path.glob("results/search-*/trials/*.json"))
    assert len(trials) == 2
    assert {oct(p.stat().st_mode & 0o777) for p in trials} == {oct(0o600)}


@pytest.mark.slow
def test_ctrl_c_while_writing_the_output_stops_the_run(tmp_path):
    import io

    # The first job's first line is the run's first output (Snakemake quiet); the second job runs unless
    # the run is stopped. The interrupt reaches the run's process group, as a terminal's Ctrl-C does:
    # the running job stops too (Snakemake alone would let it end), and no other starts.
    rules = 'rule all:\n    input: "a"\n    shell: "touch b"\n\nrule a:\n    output: "a"\n    shell: "echo started; sleep 3; touch a"\n'
    (tmp_path / "Snakefile").write_text(rules)

    class Interrupted(io.StringIO):
        def write(self, text):
            super().write(text)
            raise KeyboardInterrupt

    output = Interrupted()
    with pytest.raises(KeyboardInterrupt):
        engine.run(["--cores", "1", "--quiet", "all"], tmp_path, output=output)
    assert output.getvalue() == "started\n"
    # The engine serves one run at a time: the next one starts when the interrupted one has ended.
    code, _ = engine.run(["--version"], tmp_path, output=io.StringIO())
    assert code == 0
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another user (CI runs as root)")
def test_the_engine_refuses_another_user_and_serves_its_own_after(tmp_path):
    import io
    import json
    import socket

    from tests.peers import as_peer

    engine.connect().close()  # started
    pid = engine.engine_pid()
    address = "\0" + engine.engine_address(os.getpid())
    request = {"argv": ["--version"], "cwd": str(tmp_path), "umask": 0o022, "env": {}}

    def ask() -> bytes:  # as the other user: send a run request, read what comes back
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(address)
            sock.settimeout(30)
            received = b""
            try:
                sock.sendall((json.dumps(request) + "\n").encode())
                while chunk := sock.recv(1 << 16):
                    received += chunk
            except (ConnectionResetError, BrokenPipeError):  # closed without reading the request
                pass
            return b"uid %d: %s" % (os.getuid(), received)

    reply = as_peer(ask)
    assert reply.startswith(b"uid ") and not reply.startswith(b"uid 0:"), reply
    assert reply.endswith(b": "), f"the engine answered another user: {reply!r}"  # closed, no pid, no output
    assert engine.engine_pid() == pid  # still up ...
    output = io.StringIO()
    assert engine.run(["--version"], tmp_path, output=output) == (0, False)  # ... and serving its own user
    assert output.getvalue().strip().split(".")[0].isdigit(), output.getvalue()
    assert engine.engine_pid() == pid


def test_the_engine_warms_only_scikit_learn_modules_a_client_names():
    import sys

    names = ["sklearn.neighbors", "tests.estimators_never_imported", "sklearn.neighbors; import os", "os.path/..", 3]
    sys.modules.pop("tests.estimators", None)
    engine.warm_up([*names, "tests.estimators"])
    assert "sklearn.neighbors" in sys.modules
    assert "tests.estimators" not in sys.modules  # a client's own module is never imported by the engine
    assert not [m for m in sys.modules if "never_imported" in m or ";" in m]
