"""The pages of the study report.

The pages (``report/leaderboard.html``, ``report/best.html``, ``report/study.html``,
``report/failures.html``) are self-contained (inline CSS and JS, no network) so Snakemake's ``--report`` can embed them.
"""

from __future__ import annotations

import json
import math

# ----------------------------------------------------------------------------------------------
# HTML pages for Snakemake's report (`snakemake --report results/report.html`)

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.2rem;color:#1f2933;
background:#fff;font-size:14px;line-height:1.45}
h1{font-size:1.35rem;margin:0 0 .3rem}h2{font-size:1.05rem;margin:1.4rem 0 .4rem;color:#0b4f7c}
p.note{color:#52606d;margin:.2rem 0 .8rem}
table{border-collapse:collapse;margin:.3rem 0 1rem}
th,td{border-bottom:1px solid #e4e7eb;padding:.28rem .6rem;text-align:left;vertical-align:top}
th{background:#f0f4f8;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th[aria-sort=ascending]::after{content:" \\25B2"}
table.sortable th[aria-sort=descending]::after{content:" \\25BC"}
tr.best td{background:#fff4e5;font-weight:600}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
pre{background:#f5f7fa;padding:.7rem;border-radius:4px;overflow:auto}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:.6rem 0}
.card{border:1px solid #d9e2ec;border-radius:6px;padding:.6rem .9rem;min-width:9rem}
.card .v{font-size:1.35rem;font-weight:600}.card .k{color:#52606d;font-size:.8rem}
.bad{color:#b44700}
"""

# Click a header to sort (numbers numerically, empty cells last); no external scripts.
_SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.querySelectorAll("thead th");
  heads.forEach(function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute("data-v"), y = b.cells[col].getAttribute("data-v");
        if (x === "" || x === null) return 1;
        if (y === "" || y === null) return -1;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny) && String(nx) === x && String(ny) === y) ? nx - ny : x.localeCompare(y);
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def _page(title: str, body: str, script: str = "") -> str:
    from html import escape

    js = f"<script>{script}</script>" if script else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{body}{js}</body></html>\n"
    )


def _fmt(value) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "nan"
    return "nan" if math.isnan(v) else f"{v:.4f}"


def _score(name: str, value) -> str:
    """A stored score of metric ``name`` as shown: a loss positive (results/metrics.py)."""
    from snaketune.results.metrics import metric

    try:
        return _fmt(metric(name).shown(float(value)))
    except (TypeError, ValueError):
        return "nan"


def _label(name: str) -> str:
    from snaketune.results.metrics import label

    return label(name)


def _loss_note(scoring) -> str:
    """What the tables do to losses (empty when no metric is one)."""
    from html import escape

    from snaketune.results.metrics import metric

    losses = [metric(m) for m in scoring if metric(m).is_loss]
    if not losses:
        return ""
    names = ", ".join(f"{escape(m.label)} (<code>{escape(m.name)}</code>)" for m in losses)
    return (
        f"Losses are shown as losses, lower is better: {names}; <code>leaderboard.csv</code> keeps "
        "scikit-learn's negated <code>neg_*</code> columns. "
    )


def _score_cell(name: str, value) -> str:
    """A table cell of a shown score, sorting by the shown value."""
    from snaketune.results.metrics import metric

    try:
        shown = metric(name).shown(float(value))
    except (TypeError, ValueError):
        shown = math.nan
    return _cell(_fmt(shown), _num(shown), num=True)


def _num(value) -> str:
    """Sort key of a number cell: repr of the float (JS parses it back), '' for missing."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(v) else repr(v)


def _cell(text, sort=None, num=False) -> str:
    from html import escape

    attr = f' data-v="{escape(str(sort if sort is not None else text))}"'
    cls = ' class="num"' if num else ""
    return f"<td{cls}{attr}>{escape(str(text))}</td>"


def _table(headers, rows, sortable=False, row_classes=None) -> str:
    from html import escape

    cls = ' class="sortable"' if sortable else ""
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in headers)
    body = []
    for i, cells in enumerate(rows):
        rc = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{rc}>{''.join(cells)}</tr>")
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _kv_table(pairs) -> str:
    from html import escape

    rows = "".join(f'<tr><th scope="row">{escape(str(k))}</th><td>{v}</td></tr>' for k, v in pairs)
    return f"<table>{rows}</table>"


def _fmt_value(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return json.dumps(v) if not isinstance(v, str) else v


def leaderboard_html(frame, config: dict, top_n: int | None = None, best: dict | None = None) -> str:
    """The top ``top_n`` configurations as a self-contained HTML page with a sortable table
    (``best``, best.json, gives the comparison's warning as aggregation wrote it)."""
    from html import escape

    from snaketune.results.metrics import label, titled

    refit, scoring = config["refit"], config["scoring"]
    top_n = top_n or config.get("report", {}).get("top_n", 20)
    order = frame.sort_values([f"rank_test_{refit}", "mean_fit_time"], kind="stable").head(top_n)
    params = [json.loads(p) for p in order["params"]]
    names = sorted({k for p in params for k in p})
    headers = ["rank"] + [f"mean {label(m)}" for m in scoring] + [f"std {label(refit)}"] + names
    headers += ["mean fit s", "failed folds", "config key"]
    rows, classes = [], []
    for (_, row), p in zip(order.iterrows(), params, strict=False):
        cells = [_cell(int(row[f"rank_test_{refit}"]), num=True)]
        cells += [_score_cell(m, row[f"mean_test_{m}"]) for m in scoring]
        cells.append(_cell(_fmt(row[f"std_test_{refit}"]), _num(row[f"std_test_{refit}"]), num=True))
        for n in names:
            v = p.get(n)
            numeric = isinstance(v, (int, float)) and not isinstance(v, bool)
            cells.append(_cell("" if n not in p else _fmt_value(v), _num(v) if numeric else None, num=numeric))
        cells.append(_cell(f"{row['mean_fit_time']:.3g}", _num(row["mean_fit_time"]), num=True))
        failed = int(row.get("n_failed", 0)) + int(row.get("n_timeout", 0))
        cells.append(_cell(failed, num=True))
        cells.append(_cell(row.get("config_key", "")))
        rows.append(cells)
        classes.append("best" if row[f"rank_test_{refit}"] == 1 else "")
    n_total = len(frame)
    body = (
        f"<h1>Leaderboard of study {escape(config['study'])}</h1>"
        f'<p class="note">Top {len(order)} of {n_total} configurations by mean {escape(titled(refit))} over '
        f"the CV folds (scikit-learn's <code>rank_test_{escape(refit)}</code>; ties share a rank). "
        + _loss_note(scoring)
        + "Click a column header to sort. The full table, with every fold's score, is "
        "<code>leaderboard.csv</code> (download it from the report's Leaderboard category).</p>"
        + _table(headers, rows, sortable=True, row_classes=classes)
        + comparison_html(frame, config, best)
    )
    return _page(f"Leaderboard: {config['study']}", body, _SORT_JS)


def comparison_html(frame, config: dict, best: dict | None = None) -> str:
    """Section "Is the best really better?": the sentence, the warning, and the configurations
    not significantly worse than the best with their p-values and posterior probabilities.

    The warning is best.json's (its advice knows whether the estimator is a classifier)."""
    from html import escape

    from snaketune.results.compare import indistinguishable, summarize
    from snaketune.results.metrics import label

    if "p_vs_best" not in frame:
        return ""
    refit = config["refit"]
    report = config.get("report", {})
    # The ROPE aggregation used (scaled to the metric when report.rope is not set).
    rope = ((best or {}).get("comparison") or {}).get("rope", report.get("rope", 0.01))
    alpha = report.get("alpha", 0.05)
    k = sum(1 for c in frame.columns if c.startswith("split") and c.endswith(f"_test_{refit}"))
    p = frame["p_vs_best"].to_numpy(dtype=float)
    summary = summarize(p, metric=refit, n_folds=k, n_train=math.nan, n_test=math.nan, alpha=alpha, rope=rope)
    same = frame[indistinguishable(p, alpha)].sort_values(f"mean_test_{refit}", ascending=False, kind="stable")
    rows = [
        [
            _cell(int(r[f"rank_test_{refit}"]), num=True),
            _score_cell(refit, r[f"mean_test_{refit}"]),
            _cell(f"{r['p_vs_best']:.3g}", _num(r["p_vs_best"]), num=True),
            _cell(f"{r['prob_best_better']:.3f}", _num(r["prob_best_better"]), num=True),
            _cell(f"{r['prob_equivalent']:.3f}", _num(r["prob_equivalent"]), num=True),
            _cell(", ".join(f"{a}={_fmt_value(b)}" for a, b in sorted(json.loads(r["params"]).items()))),
        ]
        for _, r in same.head(report.get("top_n", 20)).iterrows()
    ]
    headers = ["rank", f"mean {label(refit)}", "p vs best", "P(best better)", f"P(|diff| < {rope:g})", "params"]
    text = ((best or {}).get("comparison") or {}).get("warning", summary.warning)
    warning = f'<p class="bad">warning: {escape(text)}</p>' if text else ""
    return (
        "<h2>Is the best really better?</h2>"
        f"<p>{escape(summary.sentence)}</p>{warning}"
        '<p class="note">Each configuration against the best on the same folds: one-sided Nadeau–Bengio '
        "corrected resampled t-test (<code>p_vs_best</code>) and the Bayesian posterior of the mean "
        f"difference (<code>prob_best_better</code>, <code>prob_equivalent</code> within ±{rope:g}); "
        "every row's values are in <code>leaderboard.csv</code>.</p>" + (_table(headers, rows) if rows else "")
    )


def _cards(items) -> str:
    from html import escape

    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="v{" bad" if bad else ""}">{escape(str(v))}</div>'
            f'<div class="k">{escape(k)}</div></div>'
            for k, v, bad in items
        )
        + "</div>"
    )


def best_html(best: dict, refit_summary: dict, config: dict) -> str:
    """Best configuration, its CV scores and its refit score on the held-out test set."""
    from html import escape

    from snaketune.results.metrics import label, titled

    refit = config["refit"]
    if best.get("no_best"):
        body = (
            f"<h1>No best configuration in study {escape(config['study'])}</h1>"
            f'<p class="bad">{escape(best["no_best"])}</p>'
            "<p>Nothing was refit. Why the trials failed: the Failures page.</p>"
        )
        return _page(f"Best configuration: {config['study']}", body)
    test = refit_summary.get("test_scores") or {}
    cards = [
        (f"CV mean {label(refit)}", _score(refit, best["mean_test_score"]), False),
        (f"CV std {label(refit)}", _fmt(best["std_test_score"]), False),
    ]
    if test:
        cards.append((f"test {label(refit)} (refit)", _score(refit, test.get(refit)), False))
    else:
        cards.append(("test set", "none (data.test_size: 0)", False))
    params = _kv_table((k, f"<code>{escape(_fmt_value(v))}</code>") for k, v in sorted(best["params"].items()))
    metrics = _table(
        ["metric", "CV mean (folds)", "held-out test (refit)"],
        [
            [
                _cell(titled(m)),
                _cell(_score(m, best["scores"].get(m)), num=True),
                _cell(_score(m, test[m]) if m in test else "–", num=True),
            ]
            for m in config["scoring"]
        ],
    )
    refit_facts = _kv_table(
        [
            ("trained on", f"{refit_summary.get('n_train', '?')} rows (all training data, no CV split)"),
            ("tested on", f"{refit_summary.get('n_test', 0)} held-out rows no trial ever saw"),
            ("fit time", f"{refit_summary.get('fit_time', float('nan')):.3g} s"),
            ("model file", f"<code>model.pkl</code>: {escape(str(refit_summary.get('model_format', 'pickle')))}"),
        ]
    )
    warning = f'<p class="bad">{escape(best["warning"])}</p>' if best.get("warning") else ""
    body = (
        f"<h1>Best configuration of study {escape(config['study'])}</h1>"
        f'<p class="note">Rank 1 by mean {escape(titled(refit))} over the CV folds (configuration '
        f"<code>{escape(str(best.get('config_key')))}</code>, #{best['index'] + 1} in search order), "
        "refit on all training data and scored once on the held-out test set.</p>"
        + warning
        + _cards(cards)
        + "<h2>Parameters</h2>"
        + params
        + "<h2>Scores</h2>"
        + metrics
        + "<h2>Refit</h2>"
        + refit_facts
    )
    return _page(f"Best configuration: {config['study']}", body)


def _space_rows(config: dict) -> list[list[str]]:
    from snaketune.search.space import log_spaced_parameters, search_spaces

    spaces = search_spaces(config["search"])
    logs = log_spaced_parameters(config["search"])
    rows = []
    for i, space in enumerate(spaces):
        for name, values in space.items():
            if isinstance(values, dict):
                ((shape, args),) = values.items()
                text = f"{shape}({', '.join(_fmt_value(a) for a in args)})"
            else:
                text = ", ".join(_fmt_value(v) for v in values)
            numeric = isinstance(values, dict) or all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
            )
            scale = "log" if name in logs else ("linear" if numeric else "categorical")
            cells = [_cell(name), _cell(text), _cell(scale)]
            if len(spaces) > 1:
                cells.insert(0, _cell(i + 1, num=True))
            rows.append(cells)
    return rows


def study_html(frame, best: dict, refit_summary: dict, config: dict) -> str:
    """Search space, CV scheme, trial outcomes and provenance of a study."""
    import importlib.metadata
    from html import escape

    import yaml

    ((kind, spec),) = config["search"].items()
    n_folds = len([c for c in frame.columns if c.startswith("split") and c.endswith(f"_test_{config['refit']}")])
    n_trials = best.get("n_trials", len(frame) * n_folds)
    n_failed, n_timeout = best.get("n_failed", 0), best.get("n_timeout", 0)
    n_ok = n_trials - n_failed - n_timeout
    from snaketune.strategies.registry import strategy_class

    search_note = strategy_class(config).search_note(spec)
    header = ["parameter", "values", "scale"]
    space_rows = _space_rows(config)
    if space_rows and len(space_rows[0]) == 4:
        header.insert(0, "sub-grid")
    cv = config["cv"]
    cv_pairs = [(k, f"<code>{escape(_fmt_value(v))}</code>") for k, v in sorted(cv.items())]
    cv_pairs.append(("folds per configuration", str(n_folds)))
    outcome = _cards(
        [
            ("configurations", len(frame), False),
            ("trials (configuration × fold)", n_trials, False),
            ("ok", n_ok, False),
            ("failed", n_failed, n_failed > 0),
            ("timed out", n_timeout, n_timeout > 0),
        ]
    )
    failed_rows = frame[(frame.get("n_failed", 0) + frame.get("n_timeout", 0)) > 0]
    failed_note = ""
    if len(failed_rows):
        failed_note = (
            f'<p class="note">{len(failed_rows)} configurations lost at least one fold; a failed fold '
            f"scores <code>error_score: {escape(str(config['error_score']))}</code>. The trial files "
            "(<code>trials/&lt;config_key&gt;_&lt;fold&gt;.json</code>) hold each error and traceback.</p>"
        )
        reasons = [[_cell(item["trials"], num=True), _cell(item["error"])] for item in best.get("failures", [])]
        if reasons:
            failed_note += "<p>Why trials failed (first line of each error):</p>" + _table(["trials", "error"], reasons)
            failed_note += '<p class="note">An example configuration and traceback of each: the Failures page.</p>'
    warned = [[_cell(item["trials"], num=True), _cell(item["warning"])] for item in best.get("trial_warnings", [])]
    if warned:
        failed_note += "<p>Warnings raised in trials:</p>" + _table(["trials", "warning"], warned)
    versions = dict(best.get("versions") or {})
    tools = {"snaketune": importlib.metadata.version("snaketune")}
    try:
        import snakemake

        tools["snakemake"] = snakemake.__version__
    except ImportError:
        pass
    refit_versions = refit_summary.get("versions") or {}
    prov = [
        (
            "data fingerprint",
            f"<code>{escape(str(best.get('data_fingerprint')))}</code> (sha256 of the prepared arrays)",
        ),
        ("data source", f"<code>{escape(json.dumps(config.get('data'), sort_keys=True))}</code>"),
        ("estimator", f"<code>{escape(json.dumps(config.get('estimator'), sort_keys=True))}</code>"),
        ("seed", str(config.get("seed"))),
        ("scoring / refit", f"{escape(', '.join(config['scoring']))} / {escape(config['refit'])}"),
    ]
    if config.get("command"):  # your own training script: its command, not a data set and estimator
        prov[1:3] = [("command", f"<code>{escape(config['command']['run'])}</code>")]
    prov += [(f"{k} (trials)", escape(str(v))) for k, v in sorted(versions.items())]
    prov += [(f"{k} (this report)", escape(str(v))) for k, v in sorted(tools.items())]
    prov += [(f"{k} (refit)", escape(str(v))) for k, v in sorted(refit_versions.items()) if versions.get(k) != v]
    if refit_summary.get("data_fingerprint") not in (None, best.get("data_fingerprint")):
        prov.append(("warning", '<span class="bad">the refit saw different data than the trials</span>'))
    config_yaml = yaml.safe_dump(config, sort_keys=False, default_flow_style=None)
    body = (
        f"<h1>Study {escape(config['study'])}</h1>"
        "<h2>Trials</h2>"
        + outcome
        + failed_note
        + "<h2>Search space</h2>"
        + f'<p class="note">{escape(search_note)}</p>'
        + _table(header, space_rows)
        + "<h2>Cross-validation</h2>"
        + _kv_table(cv_pairs)
        + "<h2>Provenance</h2>"
        + _kv_table(prov)
        + "<h2>Configuration (defaults filled in)</h2>"
        + f"<pre>{escape(config_yaml)}</pre>"
    )
    return _page(f"Study: {config['study']}", body)


def failures_html(frame, best: dict, config: dict) -> str:
    """The Failures page: each distinct error once, with how many trials and configurations it
    hit, one example configuration and its traceback; then the warnings, counted the same way,
    and the configurations that warned most (``n_warnings`` in ``leaderboard.csv``)."""
    from html import escape

    n_trials = best.get("n_trials", 0)
    n_failed, n_timeout = best.get("n_failed", 0), best.get("n_timeout", 0)
    parts = [f"<h1>Failures and warnings of study {escape(config['study'])}</h1>"]
    failures, warned = best.get("failures", []), best.get("trial_warnings", [])
    if not failures:
        parts.append(f'<p class="note">No trial failed or timed out ({n_trials} trials).</p>')
    else:
        parts.append(
            f'<p class="note">{n_failed + n_timeout} of {n_trials} trials did not finish '
            f"({n_failed} raised, {n_timeout} timed out); each scores "
            f"<code>error_score: {escape(str(config['error_score']))}</code>, so a configuration that lost a fold "
            "ranks low. Below, each distinct error once (grouped by its first line, most frequent first), as "
            "scikit-learn's <code>GridSearchCV</code> reports &quot;n fits failed with the following error&quot;.</p>"
        )
        for i, item in enumerate(failures, start=1):
            parts.append(
                f"<h2>{i}. <code>{escape(item['error'])}</code></h2>"
                + _cards(
                    [
                        ("trials", item["trials"], True),
                        ("configurations", item.get("configurations", "?"), True),
                    ]
                )
                + _example(item)
                + (
                    f"<details open><summary>traceback of trial <code>{escape(str(item.get('example_trial')))}"
                    f"</code></summary><pre>{escape(item['traceback'])}</pre></details>"
                    if item.get("traceback")
                    else '<p class="note">no traceback (the trial was killed: it timed out).</p>'
                )
            )
    parts.append("<h2>Warnings</h2>")
    if not warned:
        parts.append('<p class="note">No trial raised a warning.</p>')
    else:
        parts.append(
            '<p class="note">Warnings raised while fitting or scoring (e.g. <code>ConvergenceWarning</code>); the '
            "result of a warned fit is kept. Grouped by category and first line.</p>"
            + _table(
                ["trials", "configurations", "warning", "example configuration"],
                [
                    [
                        _cell(w["trials"], num=True),
                        _cell(w.get("configurations", ""), num=True),
                        _cell(w["warning"]),
                        _cell(_params_text((w.get("example") or {}).get("params") or {})),
                    ]
                    for w in warned
                ],
            )
        )
        if "n_warnings" in frame:
            refit = config["refit"]
            top = frame[frame["n_warnings"] > 0].sort_values(f"rank_test_{refit}", kind="stable").head(10)
            rows = [
                [
                    _cell(int(r[f"rank_test_{refit}"]), num=True),
                    _cell(_score(refit, r[f"mean_test_{refit}"]), num=True),
                    _cell(int(r["n_warnings"]), num=True),
                    _cell(_params_text(json.loads(r["params"]))),
                ]
                for _, r in top.iterrows()
            ]
            parts.append(
                f"<p>{int((frame['n_warnings'] > 0).sum())} of {len(frame)} configurations warned; the best "
                "ranked of them (column <code>n_warnings</code>: folds that warned):</p>"
                + _table(["rank", f"mean {_label(refit)}", "folds warned", "parameters"], rows)
            )
    return _page(f"Failures: {config['study']}", "".join(parts))


def _params_text(params: dict) -> str:
    return ", ".join(f"{k}={_fmt_value(v)}" for k, v in sorted(params.items())) or "(defaults)"


def _example(item: dict) -> str:
    from html import escape

    example = item.get("example") or {}
    return (
        f"<p>Example configuration <code>{escape(str(example.get('config_key')))}</code>: "
        f"<code>{escape(_params_text(example.get('params') or {}))}</code></p>"
    )


def runners_up_sentence(best: dict) -> str:
    """A sentence for the landing page on how many runners-up are indistinguishable from the
    winner: the statistical comparison's sentence from best.json (empty when there is none)."""
    return (best.get("comparison") or {}).get("sentence", "")


def _rst_text(text: str) -> str:
    """Prose for reStructuredText: a '|' would start a substitution ("|mean score|": an error)."""
    return text.replace("|", "\\|")


def landing_rst(best: dict, config: dict, template: str) -> str:
    """The report's landing page (reStructuredText): the winner and its score first, then the
    workflow's description ``template`` (``workflow/report/workflow.rst``, Jinja, left as is)."""
    from snaketune.results.metrics import titled

    refit = config["refit"]
    if best.get("no_best"):
        lines = [f"**No best configuration**: {best['no_best']}. Nothing was refit; see Failures_."]
        return "{% raw %}\n" + "\n".join(lines) + "\n{% endraw %}\n\n" + template
    params = ", ".join(f"{k}={_fmt_value(v)}" for k, v in sorted(best["params"].items())) or "(defaults)"
    score = f"{_score(refit, best['mean_test_score'])} ± {_fmt(best['std_test_score'])}"
    failed = best.get("n_failed", 0) + best.get("n_timeout", 0)
    lines = [
        f"**Winner**: ``{params}``",
        "",
        f"**Mean {titled(refit)}** over the CV folds: **{score}** (± std over folds); rank 1 of "
        f"{best.get('n_candidates', '?')} configurations, {best.get('n_trials', '?')} trials.",
    ]
    extra = _rst_text(runners_up_sentence(best))
    if extra:
        lines += ["", extra]
    if failed:
        lines += ["", f"{failed} trials failed or timed out: see Failures_."]
    if best.get("warning"):
        lines += ["", f"**Warning**: {_rst_text(best['warning'])}"]
    # Parameter values are user text: keep Jinja (which renders this file) away from them.
    return "{% raw %}\n" + "\n".join(lines) + "\n{% endraw %}\n\n" + template


def write_pages(
    *, leaderboard: str, best: str, refit: str, config: dict, outputs: dict, landing_template: str | None = None
) -> None:
    """Write the report's pages named in ``outputs``: ``leaderboard``, ``best``, ``study``,
    ``failures`` (HTML) and ``landing`` (the landing page's reStructuredText, the winner above
    the text of ``landing_template``)."""
    from pathlib import Path

    import pandas as pd

    frame = pd.read_csv(leaderboard)
    best_summary = json.loads(Path(best).read_text())
    refit_summary = json.loads(Path(refit).read_text())
    pages = {
        "leaderboard": lambda: leaderboard_html(frame, config, best=best_summary),
        "best": lambda: best_html(best_summary, refit_summary, config),
        "study": lambda: study_html(frame, best_summary, refit_summary, config),
        "failures": lambda: failures_html(frame, best_summary, config),
        "landing": lambda: landing_rst(best_summary, config, Path(landing_template).read_text()),
    }
    for name, path in outputs.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(f"{path}.tmp")
        tmp.write_text(pages[name](), encoding="utf-8")
        tmp.replace(path)


def report_path(config_file: str) -> str:
    """Where a study's Snakemake report goes: ``<output_dir>/<study>/report.html``, one per study
    (``make report CONFIG=...``)."""
    from snaketune.config.load import read_yaml

    config = read_yaml(config_file)
    return f"{config.get('output_dir', 'results')}/{config['study']}/report.html"


def main(argv=None) -> int:
    """``python -m snaketune.report`` (used by the workflow's report_pages rule)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m snaketune.report", description=main.__doc__)
    parser.add_argument("--leaderboard", required=True)
    parser.add_argument("--best", required=True)
    parser.add_argument("--refit", required=True)
    parser.add_argument("--config-json", required=True, help="the study config as JSON text")
    for name in ("leaderboard", "best", "study", "failures"):
        parser.add_argument(f"--{name}-html", required=True)
    args = parser.parse_args(argv)
    write_pages(
        leaderboard=args.leaderboard,
        best=args.best,
        refit=args.refit,
        config=json.loads(args.config_json),
        outputs={
            "leaderboard": args.leaderboard_html,
            "best": args.best_html,
            "study": args.study_html,
            "failures": args.failures_html,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
