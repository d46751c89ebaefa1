"""Model-based search with Optuna's samplers, in rounds: round r's ask job tells the sampler round
r-1's results and asks ``batch_size`` configurations (:mod:`snaketune.evaluation.rounds`)."""

from __future__ import annotations

from functools import cached_property

from snaketune.strategies.base import Strategy
from snaketune.strategies.jobs import JobSettings, TrialJob, call_args, call_file, fixed, pooled_batches


class OptunaSearch(Strategy):
    kind = "optuna"
    rule_files = ("optuna.smk",)
    expands_space = False
    batched = False
    sampled = True
    extra_plots = ("optimization_history",)
    side_outputs = ("journal",)
    worker_imports = ("optuna.samplers", "snaketune.search.optuna_space", "snaketune.evaluation.rounds")

    @cached_property
    def layout(self):
        """The :class:`~snaketune.evaluation.rounds.OptunaPlan`."""
        from snaketune.evaluation.rounds import setup

        return setup(self)

    def side_output_paths(self) -> list[str]:
        return [self.layout.journal_path]  # the study as Optuna storage

    def step_outputs(self) -> list[str]:
        return self.layout.ask_outputs

    @property
    def asks_in_round_jobs(self) -> bool:
        """Whether each round is one job that asks, then runs the round's trials on forks
        (``trials_per_job: auto`` on a local run, :func:`~snaketune.strategies.jobs.pooled_batches`),
        instead of an ``ask`` job and then the round's trial jobs. Decided from the config alone:
        every process that parses the workflow must define the same rules."""
        return self.config.get("trials_per_job", 1) == "auto" and pooled_batches(self.config)

    def trial_jobs(self, settings: JobSettings) -> list[TrialJob]:
        """One fold of one configuration of round r a job, reading its configuration from the
        round's ask file at run time; ``trials_per_job`` > 1 or ``auto`` puts several trials of
        one round in a job. A round's trials form group ``trials-r<round>``: packed within a
        round only (two rounds in one group would depend on themselves through the ask between
        them).

        ``auto`` on a local run (:attr:`asks_in_round_jobs`) makes each round one job with the
        run's cores: it asks, then hands the round's trials to forks, each taking the next when
        free. No core idles while another job of the round finishes, and a round costs one job
        start instead of two (an ask job and a trials job: ~50 ms of hand-over each round). The
        ask is deterministic (the previous round's saved sampler state), so a rerun of the job
        asks the same configurations and restores their trials from the trial cache.
        """
        rounds, out, data = self.layout, self.plan.out, settings.data_inputs
        setting = self.config.get("trials_per_job", 1)
        merged = self.asks_in_round_jobs
        groups = rounds.trial_groups(setting, one_job_a_round=merged)
        if all(len(trials) == 1 for _, trials in groups) and not merged:

            def call(wc) -> str:
                r, k, fold = int(wc.round), int(wc.index), int(wc.fold)
                return call_args(specs=[rounds.trial_specs(r, k)[fold]], outputs=[rounds.slot_trials(r, k)[fold]])

            return [
                TrialJob(
                    name="optuna_trial",
                    outputs={"trial": f"{out}/trials/o{{round}}-{{index}}_{{fold}}.json"},
                    log=f"{out}/logs/trials/o{{round}}-{{index}}_{{fold}}.log",
                    call=call,
                    inputs=lambda wc: dict(data, ask=rounds.ask_path(int(wc.round))),
                    group=lambda wc: f"trials-r{wc.round}",
                )
            ]
        jobs = []
        for r, trials in groups:
            (k0, f0) = trials[0]
            specs = [rounds.trial_specs(r, k)[f] for k, f in trials]
            outputs = [rounds.slot_trials(r, k)[f] for k, f in trials]
            # One job a round (pooled): its trials on forks, with the run's cores.
            threads, extra = settings.pool(len(trials)) if setting == "auto" else (None, {})
            args = {"specs": specs, "outputs": outputs, **extra}
            named = {"trials": outputs}
            inputs = dict(data, ask=rounds.ask_path(r))
            if merged:
                args["ask"] = rounds.ask_args(r)
                named.update(ask=rounds.ask_path(r), state=rounds.state_path(r))
                inputs = dict(data, **self.ask_inputs(r))
            jobs.append(
                TrialJob(
                    name=f"optuna_trials_r{r}_{k0}_{f0}",
                    outputs=named,
                    log=f"{out}/logs/trials/o{r}-{k0}_{f0}-batch.log",
                    call=call_file(out, **args),
                    inputs=fixed(inputs),
                    group=f"trials-r{r}",
                    threads=threads,
                )
            )
        return jobs

    def ask_inputs(self, r: int) -> dict:
        """Round ``r``'s ask job needs round ``r - 1``'s ask file, Optuna state and trial files."""
        if r == 0:
            return {}
        previous = self.layout.ask_args(r)["previous"]
        trials = [p for paths in previous["trials"] for p in paths]
        return {"ask": previous["ask"], "state": previous["state"], "trials": trials}

    def announce(self) -> str:
        return self.layout.summary()

    def plan_summary(self) -> dict:
        return dict(self.layout.to_summary(), classifier=self.plan.classifier)

    def plan_report(self) -> tuple[dict, str]:
        rounds = self.layout
        summary = {"rounds": rounds.n_rounds, "batch_size": rounds.batch_size, "configurations": rounds.n_trials}
        summary.update(folds=rounds.n_folds, trials=len(rounds.trial_paths))
        return summary, rounds.summary() + f" = {summary['trials']} trials"

    @classmethod
    def search_note(cls, spec) -> str:
        return (
            f"Model-based search: Optuna's {spec.get('sampler')} sampler (seed {spec.get('seed', 0)}), "
            f"{spec.get('n_trials')} configurations asked in rounds of {spec.get('batch_size')}; "
            "the study is also Optuna storage in optuna/journal.log (optuna-dashboard opens it)."
        )

    # ------------------------------------------------------------------ results
    @classmethod
    def row_trial_ids(cls, plan: dict) -> list[list[str]]:
        return [row["trial_ids"] for row in plan["rows"]]  # one row per asked configuration

    @classmethod
    def extra_columns(cls, plan: dict, records: dict, trial_ids) -> dict:
        return {"round": [row["round"] for row in plan["rows"]], "number": [row["number"] for row in plan["rows"]]}

    @classmethod
    def best_summary(cls, plan: dict, records: dict, trial_ids, results: dict, best: int) -> dict:
        settings = {k: v for k, v in plan["settings"].items() if k != "params"}
        return {"round": int(results["round"][best]), "number": int(results["number"][best]), cls.kind: settings}
