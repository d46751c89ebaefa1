# Trial files -> leaderboard (sklearn cv_results_ columns), plots and the refit best model.


rule aggregate:
    input:
        PLAN.trial_paths,
    output:
        leaderboard=f"{OUT}/leaderboard.csv",
        markdown=f"{OUT}/leaderboard.md",
        best=f"{OUT}/best.json",
    params:
        plan=ws.plan_summary(PLAN),
        scoring=config["scoring"],
        refit=config["refit"],
        error_score=config["error_score"],
        return_train_score=config["return_train_score"],
        top_n=config["report"]["top_n"],
    log:
        f"{OUT}/logs/aggregate.log",
    conda:
        "../../envs/snaketune.yaml"
    script:
        "../../scripts/aggregate.py"


rule plots:
    input:
        leaderboard=f"{OUT}/leaderboard.csv",
        best=f"{OUT}/best.json",
    output:
        [f"{OUT}/plots/{name}.png" for name in STUDY.plot_names()],
    params:
        config=config,
    log:
        f"{OUT}/logs/plots.log",
    conda:
        "../../envs/snaketune.yaml"
    script:
        "../../scripts/plots.py"


rule refit:
    input:
        data=multiext(f"{PLAN.data_dir}/", "X.npy", "y.npy", "X_test.npy", "y_test.npy", "meta.json"),
        best=f"{OUT}/best.json",
    output:
        model=f"{OUT}/model.pkl",
        summary=f"{OUT}/refit.json",
    params:
        estimator=config["estimator"],
        allowed_modules=config["allowed_modules"],
        seed=config["seed"],
        scoring=config["scoring"],
    log:
        f"{OUT}/logs/refit.log",
    conda:
        "../../envs/snaketune.yaml"
    script:
        "../../scripts/refit.py"
