# Trial files -> leaderboard (sklearn cv_results_ columns), plots, the refit best model, and the
# pages of the study report (`snakemake --report results/report.html`, see docs/report.md).
import os

from snaketune.results.plots import PLOT_TITLES

# Landing page of the report: the winner and its score (written by report_pages), then what the
# study is and where to look; before the study has run, only the latter.
LANDING = f"{OUT}/report/landing.rst"


report: os.path.abspath(LANDING) if os.path.exists(LANDING) else "../report/workflow.rst"


rule aggregate:
    input:
        STUDY.job_outputs,
    output:
        leaderboard=report(
            f"{OUT}/leaderboard.csv",
            caption="../report/leaderboard_csv.rst",
            category="Leaderboard",
            labels={"table": "all configurations (CSV download)"},
        ),
        markdown=f"{OUT}/leaderboard.md",
        best=f"{OUT}/best.json",
        # Adaptive searches: every scored point of every model.
        history=STUDY.leaderboard_outputs()[3:],
    log:
        f"{OUT}/logs/aggregate.log",
    conda:
        "../../envs/snaketune.yaml"
    params:
        call=call_file(
            OUT,
            plan=STUDY.plan_summary(),
            config=config,
            outputs=STUDY.leaderboard_outputs(),
        ),
    shell:
        CALL_COMMAND.format(name="aggregate")


rule plots:
    input:
        leaderboard=f"{OUT}/leaderboard.csv",
        best=f"{OUT}/best.json",
        history=STUDY.leaderboard_outputs()[3:],
    output:
        [
            report(
                f"{OUT}/plots/{name}.png",
                caption=f"../report/plot_{name}.rst",
                category="Plots",
                labels={"plot": PLOT_TITLES[name], "metric": config["refit"]},
            )
            for name in STUDY.plot_names()
        ],
    log:
        f"{OUT}/logs/plots.log",
    conda:
        "../../envs/snaketune.yaml"
    params:
        # In a file: the report's info panel shows a rule's params, and the config is long.
        call=call_file(
            OUT,
            leaderboard=f"{OUT}/leaderboard.csv",
            config=config,
            outputs=[f"{OUT}/plots/{name}.png" for name in STUDY.plot_names()],
        ),
    shell:
        CALL_COMMAND.format(name="plots")


rule refit:
    input:
        data=DATA,
        best=f"{OUT}/best.json",
    output:
        model=f"{OUT}/model.pkl",
        summary=f"{OUT}/refit.json",
    log:
        f"{OUT}/logs/refit.log",
    conda:
        "../../envs/snaketune.yaml"
    params:
        call=lambda wc, input, output: call_args(
            data_dir=PLAN.data_dir,
            best=input.best,
            estimator=config["estimator"],
            allowed_modules=config["allowed_modules"],
            seed=config["seed"],
            scoring=config["scoring"],
            outputs=[output.model, output.summary],
            budget=STUDY.refit_budget(),
            # A derived param (a function of output): changing a limit reruns no refit.
            trial_timeout=config["trial_timeout"],
            refit_timeout=config["refit_timeout"],
        ),
    shell:
        CALL_COMMAND.format(name="refit")


# Self-contained HTML pages that Snakemake's report embeds (inline CSS/JS, no network).
rule report_pages:
    input:
        leaderboard=f"{OUT}/leaderboard.csv",
        best=f"{OUT}/best.json",
        refit=f"{OUT}/refit.json",
    output:
        leaderboard=report(
            f"{OUT}/report/leaderboard.html",
            caption="../report/leaderboard.rst",
            category="Leaderboard",
            labels={"table": f"top {config['report']['top_n']} (sortable)"},
        ),
        best=report(
            f"{OUT}/report/best.html",
            caption="../report/best.rst",
            category="Best configuration",
            labels={"page": "best configuration and refit test score"},
        ),
        study=report(
            f"{OUT}/report/study.html",
            caption="../report/study.rst",
            category="Study",
            labels={"page": "search space, CV, failures, provenance"},
        ),
        failures=report(
            f"{OUT}/report/failures.html",
            caption="../report/failures.rst",
            category="Failures",
            labels={"page": "each distinct error with a traceback; warnings"},
        ),
        landing=LANDING,
    log:
        f"{OUT}/logs/report_pages.log",
    conda:
        "../../envs/snaketune.yaml"
    params:
        call=call_file(
            OUT,
            leaderboard=f"{OUT}/leaderboard.csv",
            best=f"{OUT}/best.json",
            refit=f"{OUT}/refit.json",
            config=config,
            outputs=[
                f"{OUT}/report/{page}"
                for page in (
                    "leaderboard.html",
                    "best.html",
                    "study.html",
                    "failures.html",
                    "landing.rst",
                )
            ],
            landing_template=os.path.join(HOME, "workflow", "report", "workflow.rst"),
        ),
    shell:
        CALL_COMMAND.format(name="report_pages")


localrules:
    aggregate,
    plots,
    report_pages,
