"""The study report: HTML pages (unit) and `snakemake --report` opened in headless chromium (e2e).

The browser test drives Debian's chromium over the Chrome DevTools Protocol with a tiny
stdlib websocket client (no selenium), and leaves a screenshot in the repo's
``results/report-screenshot.png`` for CI to keep as an artifact.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, require_system

SCREENSHOT = REPO / "results" / "report-screenshot.png"
PLOT_SCREENSHOT = REPO / "results" / "report-screenshot-plot.png"
LANDING_SCREENSHOT = REPO / "results" / "report-screenshot-landing.png"

REPORT_STUDY = {
    "study": "report",
    "data": {"loader": "iris", "test_size": 0.25},
    "estimator": {
        "steps": [
            {"name": "scale", "class": "sklearn.preprocessing.StandardScaler"},
            {"name": "svc", "class": "sklearn.svm.SVC"},
        ]
    },
    "search": {"grid": {"svc__C": [0.1, 10.0], "svc__gamma": [0.01, 1.0], "svc__kernel": ["rbf", "sigmoid"]}},
    "cv": {"n_splits": 2},
    "scoring": ["accuracy", "f1_macro"],
}


# ---------------------------------------------------------------------------------------------
# unit: the pages


def _frame_and_summaries(tmp_path):
    import numpy as np
    import pandas as pd

    rows = []
    for i, (c, kernel) in enumerate([(0.1, "rbf"), (1.0, "rbf"), (10.0, "sigmoid")]):
        rows.append(
            {
                "mean_fit_time": 0.01 * (i + 1),
                "params": json.dumps({"C": c, "kernel": kernel}),
                "split0_test_accuracy": 0.8 + 0.05 * i,
                "split1_test_accuracy": 0.82 + 0.05 * i,
                "mean_test_accuracy": 0.81 + 0.05 * i if i != 1 else np.nan,
                "std_test_accuracy": 0.01,
                "rank_test_accuracy": [2, 3, 1][i],
                "n_failed": 2 if i == 1 else 0,
                "n_timeout": 0,
                "config_key": f"{i:012x}",
            }
        )
    frame = pd.DataFrame(rows)
    best = {
        "index": 2,
        "params": {"C": 10.0, "kernel": "sigmoid"},
        "config_key": f"{2:012x}",
        "mean_test_score": 0.91,
        "std_test_score": 0.01,
        "scores": {"accuracy": 0.91},
        "n_trials": 6,
        "n_failed": 2,
        "n_timeout": 0,
        "data_fingerprint": "ab" * 32,
        "versions": {"python": "3.11", "sklearn": "1.9.1", "numpy": "2.4.6"},
    }
    refit = {
        "test_scores": {"accuracy": 0.93},
        "n_train": 100,
        "n_test": 50,
        "fit_time": 0.01,
        "versions": best["versions"],
    }
    config = {
        "study": "unit<&>",
        "data": {"loader": "iris"},
        "estimator": {"class": "sklearn.svm.SVC"},
        "search": {"grid": {"C": {"logspace": [-1, 1, 3]}, "kernel": ["rbf", "sigmoid"]}},
        "cv": {"kind": "auto", "n_splits": 2},
        "scoring": ["accuracy"],
        "refit": "accuracy",
        "error_score": "nan",
        "seed": 0,
        "report": {"top_n": 20},
    }
    return frame, best, refit, config


def test_pages_hold_leaderboard_best_and_provenance(tmp_path):
    from snaketune.results import report

    frame, best, refit, config = _frame_and_summaries(tmp_path)
    board = report.leaderboard_html(frame, config)
    assert board.count("<tr") == 1 + 3 and 'class="sortable"' in board and "<script>" in board
    assert board.index("sigmoid") < board.index("0.1<")  # rank 1 first
    assert "unit&lt;&amp;&gt;" in board and "unit<&>" not in board  # escaped
    assert "http" not in board  # self-contained
    page = report.best_html(best, refit, config)
    assert "0.9300" in page and "sigmoid" in page and "held-out" in page
    study = report.study_html(frame, best, refit, config)
    for text in ("logspace(-1, 1, 3)", ">log<", "ab" * 32, "1.9.1", "failed", "n_splits"):
        assert text in study, text
    assert report.leaderboard_html(frame, config, top_n=1).count("<tr") == 2


def test_pages_show_a_loss_as_a_loss(tmp_path):
    """An RMSE study (stored as scikit-learn's ``neg_root_mean_squared_error``, about -550): the
    leaderboard, best and landing pages say RMSE, positive, lower is better; the best first."""
    import re

    from snaketune.results import report

    frame, best, refit, config = _frame_and_summaries(tmp_path)
    rmse = "neg_root_mean_squared_error"
    frame = frame.rename(columns=lambda c: c.replace("accuracy", rmse))
    for column in [c for c in frame.columns if "_test_" in c and not c.startswith(("rank", "std"))]:
        frame[column] = -1000 * (1.5 - frame[column])  # rank 1 (0.91) -> -590, the lowest RMSE
    config = dict(config, scoring=[rmse], refit=rmse)
    best = dict(best, mean_test_score=-590.0, scores={rmse: -590.0})
    refit = dict(refit, test_scores={rmse: -601.25})
    board = report.leaderboard_html(frame, config)
    assert ">mean RMSE<" in board and ">std RMSE<" in board
    assert "by mean RMSE (lower is better)" in board and "Losses are shown as losses" in board
    cells = re.findall(r'<td class="num" data-v="[^"]*">([^<]*)</td>', board)
    assert "590.0000" in cells and not any(c.startswith("-") for c in cells)
    assert board.index("590.0000") < board.index("690.0000")  # rank 1, the lowest, first
    page = report.best_html(best, refit, config)
    assert "CV mean RMSE" in page and "590.0000" in page and "601.2500" in page and "-590" not in page
    landing = report.landing_rst(best, config, "")
    assert "**Mean RMSE (lower is better)** over the CV folds: **590.0000 ± 0.0100**" in landing


@pytest.mark.parametrize(
    ("trials_per_job", "says"),
    [
        (1, "each ran as its own Snakemake job (``trials_per_job: 1``)"),
        ("auto", "the trials ran in batches, several to a Snakemake job (``trials_per_job: auto``"),
        (6, "the trials ran in batches, several to a Snakemake job (``trials_per_job: 6``)."),
    ],
)
def test_landing_template_says_how_trials_ran(trials_per_job, says):
    """The landing page's description (workflow/report/workflow.rst, rendered by Snakemake's Jinja)
    says whether trials ran one a job or in batches, as the config made them run."""
    import types

    import jinja2

    config = {"study": "s", "estimator": {"class": "sklearn.svm.SVC"}, "refit": "accuracy"}
    config["trials_per_job"] = trials_per_job
    template = (REPO / "workflow" / "report" / "workflow.rst").read_text()
    text = " ".join(jinja2.Template(template).render(snakemake=types.SimpleNamespace(config=config)).split())
    assert says in text and "ranked by mean **accuracy**" in text


def test_failures_page_and_landing_page(tmp_path):
    from snaketune.results import report

    frame, best, refit, config = _frame_and_summaries(tmp_path)
    frame["n_warnings"] = [0, 2, 1]
    best["failures"] = [
        {
            "error": "ValueError: Solver lbfgs supports only 'l2' <or> None",
            "trials": 2,
            "configurations": 1,
            "example": {"params": {"C": 1.0, "kernel": "rbf"}, "config_key": "000000000001"},
            "example_trial": "000000000001_0",
            "traceback": "Traceback (most recent call last):\n  ...\nValueError: Solver lbfgs supports only 'l2' <or> None",
        }
    ]
    best["trial_warnings"] = [
        {
            "warning": "ConvergenceWarning: did not converge",
            "trials": 3,
            "configurations": 2,
            "example": {"params": {"C": 10.0, "kernel": "sigmoid"}, "config_key": "000000000002"},
            "example_trial": "000000000002_1",
        }
    ]
    page = report.failures_html(frame, best, config)
    assert page.count("<pre>") == 1 and "supports only &#x27;l2&#x27; &lt;or&gt; None" in page
    assert "2 of 6 trials did not finish" in page and "C=1, kernel=rbf" in page
    assert "2 of 3 configurations warned" in page and "ConvergenceWarning: did not converge" in page
    # The best-ranked warned configuration first (rank 1: C=10, sigmoid, 1 fold warned).
    assert page.index("C=10, kernel=sigmoid</td>") < page.index(
        "C=1, kernel=rbf</td>", page.index("configurations warned")
    )
    quiet = report.failures_html(frame.assign(n_warnings=0), {**best, "failures": [], "trial_warnings": []}, config)
    assert "No trial failed or timed out" in quiet and "No trial raised a warning" in quiet
    landing = report.landing_rst(best, config, "Study **{{ snakemake.config['study'] }}**")
    assert "**Winner**: ``C=10, kernel=sigmoid``" in landing
    assert "**Mean accuracy** over the CV folds: **0.9100 ± 0.0100**" in landing
    assert "2 trials failed or timed out: see Failures_." in landing
    assert landing.startswith("{% raw %}") and landing.endswith("Study **{{ snakemake.config['study'] }}**")
    assert report.report_path(_write_yaml(tmp_path, {"study": "s1", "output_dir": "out"})) == "out/s1/report.html"


def _write_yaml(tmp_path, data) -> str:
    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_completion_order_follows_trial_end_times():
    from types import SimpleNamespace

    import pandas as pd

    from snaketune.results.leaderboard import add_completion

    frame = pd.DataFrame({"x": [0, 1, 2]})
    ends = {
        "a_0": "2026-01-01T00:00:05+00:00",
        "a_1": "2026-01-01T00:00:09+00:00",
        "b_0": "2026-01-01T00:00:01+00:00",
        "b_1": "2026-01-01T00:00:02+00:00",
        "c_0": "2026-01-01T00:00:03+00:00",
    }
    records = {t: SimpleNamespace(end=end) for t, end in ends.items()}
    add_completion(frame, records, [[f"{c}_{k}" for k in range(2)] for c in "abc"])
    assert frame["completion_order"].tolist()[:2] == [2, 1]
    assert pd.isna(frame["completion_order"][2]) and frame["completed_at"][0].endswith("09+00:00")


# ---------------------------------------------------------------------------------------------
# a tiny Chrome DevTools Protocol client (stdlib websocket, RFC 6455 client side)


class CDP:
    def __init__(self, ws_url: str, timeout: float = 30):
        host_port, path = ws_url.removeprefix("ws://").split("/", 1)
        host, port = host_port.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("devtools closed the connection")
            head += chunk
        assert b" 101 " in head.split(b"\r\n", 1)[0], head
        self.next_id = 0
        self.events: list[dict] = []

    def _recv_exact(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("devtools closed the connection")
            data += chunk
        return bytes(data)

    def _recv_message(self) -> dict:
        payload = bytearray()
        while True:
            b0, b1 = self._recv_exact(2)
            size = b1 & 0x7F
            if size == 126:
                (size,) = struct.unpack("!H", self._recv_exact(2))
            elif size == 127:
                (size,) = struct.unpack("!Q", self._recv_exact(8))
            data = self._recv_exact(size)
            opcode = b0 & 0x0F
            if opcode == 8:
                raise ConnectionError("devtools closed the websocket")
            if opcode in (0, 1, 2):
                payload += data
                if b0 & 0x80:
                    return json.loads(payload)

    def _send(self, text: str) -> None:
        data = text.encode()
        header = bytearray([0x81])
        if len(data) < 126:
            header.append(0x80 | len(data))
        elif len(data) < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack("!H", len(data))
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", len(data))
        mask = os.urandom(4)
        self.sock.sendall(bytes(header) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self._send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = self._recv_message()
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def evaluate(self, expression: str, context_id: int | None = None):
        params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        if context_id is not None:
            params["contextId"] = context_id
        result = self.call("Runtime.evaluate", **params)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20, context_id: int | None = None):
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression, context_id)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(expression)
            time.sleep(0.2)

    def console_errors(self) -> list[str]:
        errors = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                errors.append(json.dumps(params["exceptionDetails"])[:500])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(
                    f"{params['entry'].get('source')}: {params['entry']['text']} {params['entry'].get('url', '')}"
                )
        return errors

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def browser(tmp_path):
    """A headless chromium with a fresh profile; yields a CDP session on its first tab."""
    binary = require_system("chromium", "chromium-browser", "google-chrome")
    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
    proc = subprocess.Popen(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "--window-size=1400,1000",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    cdp = None
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            targets = json.load(resp)
        page = next(t for t in targets if t["type"] == "page")
        cdp = CDP(page["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log"):
            cdp.call(f"{domain}.enable")
        cdp.call("Emulation.setDeviceMetricsOverride", width=1400, height=1000, deviceScaleFactor=1, mobile=False)
        yield cdp
    finally:
        if cdp is not None:
            cdp.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


def _frame_context(cdp: CDP, url_prefix: str) -> int:
    """An isolated JS context in the (data: URL) iframe whose URL starts with ``url_prefix``."""

    def frames(tree):
        yield tree["frame"]
        for child in tree.get("childFrames", []):
            yield from frames(child)

    deadline = time.monotonic() + 20
    while True:
        tree = cdp.call("Page.getFrameTree")["frameTree"]
        found = [f for f in frames(tree) if f.get("url", "").startswith(url_prefix) and f.get("parentId")]
        if found:
            return cdp.call("Page.createIsolatedWorld", frameId=found[0]["id"], worldName="check")["executionContextId"]
        if time.monotonic() > deadline:
            raise TimeoutError(f"no iframe with {url_prefix}")
        time.sleep(0.2)


def _screenshot(cdp: CDP, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = cdp.call("Page.captureScreenshot", format="png")["data"]
    path.write_bytes(base64.b64decode(data))


def check_report_in_browser(cdp: CDP, report_html: Path, study: str) -> dict:
    """Open the report, show the leaderboard and a plot; return what was seen."""
    cdp.call("Page.navigate", url=report_html.resolve().as_uri())
    cdp.wait_for(
        "document.readyState === 'complete' && typeof app !== 'undefined' && !!document.querySelector('nav, #app *')"
    )
    seen = {}
    # The landing page: the winner and its score before anything is clicked.
    seen["landing"] = cdp.wait_for(
        "(() => { const p = document.querySelector('.prose');"
        " return p && p.innerText.includes('Winner') && p.getBoundingClientRect().height > 50 ? p.innerText : null; })()"
    )
    _screenshot(cdp, LANDING_SCREENSHOT)
    keys = cdp.evaluate("Object.keys(results)")
    board = next(k for k in keys if k.endswith(f"{study}/report/leaderboard.html"))
    plot = next(k for k in keys if k.endswith(f"{study}/plots/score_map.png"))
    # What clicking the category "Leaderboard" and then the result's eye button does.
    cdp.evaluate(
        f"app.showCategory('Leaderboard'); app.setView({{content: 'html', contentPath: results[{json.dumps(board)}].data_uri, resultPath: {json.dumps(board)}}}); true"
    )
    cdp.wait_for(
        "(() => { const f = document.querySelector('iframe'); if (!f) return false; const r = f.getBoundingClientRect(); return r.width > 300 && r.height > 300; })()"
    )
    ctx = _frame_context(cdp, "data:text/html")
    seen["rows"] = cdp.wait_for(
        "(() => { const rows = document.querySelectorAll('table.sortable tbody tr');"
        " const r = rows.length && rows[0].getBoundingClientRect();"
        " return rows.length && r.width > 200 && r.height > 5 ? rows.length : 0; })()",
        context_id=ctx,
    )
    seen["headers"] = cdp.evaluate("[...document.querySelectorAll('table.sortable th')].map(t => t.textContent)", ctx)
    seen["first_rank"] = cdp.evaluate("document.querySelector('table.sortable tbody td').textContent", ctx)
    # Sorting works: by rank descending after two clicks.
    cdp.evaluate("const th = document.querySelector('table.sortable th'); th.click(); th.click(); true", ctx)
    seen["first_rank_desc"] = cdp.evaluate("document.querySelector('table.sortable tbody td').textContent", ctx)
    cdp.evaluate("document.querySelector('table.sortable th').click(); true", ctx)
    time.sleep(0.3)
    _screenshot(cdp, SCREENSHOT)
    cdp.evaluate(
        f"app.showCategory('Plots'); app.setView({{content: 'img', contentPath: results[{json.dumps(plot)}].data_uri, resultPath: {json.dumps(plot)}}}); true"
    )
    seen["plot"] = cdp.wait_for(
        "(() => { const i = [...document.querySelectorAll('img')].find(i => i.src.startsWith('data:image/png'));"
        " if (!i || !i.complete) return null; const r = i.getBoundingClientRect();"
        " return i.naturalWidth > 200 && r.width > 200 && r.height > 200 ? [i.naturalWidth, i.naturalHeight] : null; })()"
    )
    seen["menu"] = cdp.evaluate("document.body.innerText")
    _screenshot(cdp, PLOT_SCREENSHOT)
    seen["errors"] = cdp.console_errors()
    return seen


@pytest.mark.slow
@pytest.mark.browser
def test_snakemake_report_renders_in_chromium(make_study, browser):
    study = make_study(REPORT_STUDY)
    t0 = time.monotonic()
    study.snakemake()
    report_html = study.out / "report.html"  # one report per study, where make report puts it
    study.snakemake("--report", str(report_html))
    print(f"run + report: {time.monotonic() - t0:.1f} s, report {report_html.stat().st_size / 1e6:.2f} MB")
    text = report_html.read_text()
    assert "http://" not in text.split("<script>", 1)[0]  # nothing fetched before the scripts
    pages = study.out / "report"
    for name in ("leaderboard", "best", "study"):
        assert (pages / f"{name}.html").stat().st_size > 1000

    seen = check_report_in_browser(browser, report_html, REPORT_STUDY["study"])
    assert seen["errors"] == []
    best = study.best()
    winner = ", ".join(
        f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(best["params"].items())
    )
    assert f"Winner: {winner}" in seen["landing"], seen["landing"]
    score = f"{best['mean_test_score']:.4f} ± {best['std_test_score']:.4f}"
    assert f"Mean accuracy over the CV folds: {score}" in seen["landing"], seen["landing"]
    assert seen["landing"].index("Winner") < seen["landing"].index("Where to look")
    assert seen["rows"] == 8  # every configuration (8 < top_n = 20)
    assert seen["headers"][:3] == ["rank", "mean accuracy", "mean F1 (macro)"]
    assert seen["first_rank"] == "1" and seen["first_rank_desc"] != "1"
    assert seen["plot"][0] > 200
    for category in ("Leaderboard", "Best configuration", "Plots", "Study", "Failures"):
        assert category in seen["menu"], category
    assert SCREENSHOT.stat().st_size > 10_000 and PLOT_SCREENSHOT.stat().st_size > 10_000
    assert LANDING_SCREENSHOT.stat().st_size > 10_000


def test_landing_page_prose_with_a_bar_is_valid_restructuredtext():
    """A '|' in the comparison sentence or the warning ("1 % of the best's |mean score|") is text,
    not a substitution reference, which Snakemake's report would flag as an error."""
    import docutils.core

    from snaketune.results import report

    best = {
        "params": {"C": 1.0},
        "mean_test_score": -8.25,
        "std_test_score": 0.06,
        "comparison": {"sentence": "ROPE: 1% of the best's |mean neg_root_mean_squared_error|."},
        "warning": "only 3 folds: |t| has 2 degrees of freedom",
    }
    text = report.landing_rst(best, {"refit": "neg_root_mean_squared_error"}, "")
    body = text.replace("{% raw %}", "").replace("{% endraw %}", "")
    # halt_level 2: any warning or error while parsing raises instead of being printed.
    tree = docutils.core.publish_doctree(body, settings_overrides={"halt_level": 2, "report_level": 5})
    assert "|mean neg_root_mean_squared_error|" in tree.astext()
