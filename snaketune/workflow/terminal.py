"""What a run prints: Snakemake's logger plugin ``snaketune`` and the records the workflow sends it.

By default (``logger: [snaketune]`` in ``profiles/default/config.yaml``) a run prints a short
header (study, trials cached and to run, cores or executor), then one live progress line in a
terminal, or a plain line every tenth of the run (and at least every minute) when the output is
a file or a pipe, then the end-of-run summary. Warnings and errors always show, formatted as
Snakemake formats them. ``--logger-snaketune-jobs`` (also ``--printshellcmds`` or ``--verbose``)
restores Snakemake's per-job listing.

The workflow talks to the handler through Snakemake's own logger: a record with a ``snaketune``
field carries a :class:`RunInfo` (the header) or a :class:`RunEnd` (the summary); with another
logger, Snakemake prints the record's plain text. The handler counts trials from the trial files
a finished job wrote (``JOB_INFO`` names a job's outputs, ``JOB_FINISHED`` says it is done).
"""

# No `from __future__ import annotations`: Snakemake turns LogHandlerSettings' field types
# into command-line options and needs them as real types.
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.common import LogEvent
from snakemake_interface_logger_plugins.settings import LogHandlerSettingsBase

from snaketune.runtime import snakemake_cli

# Snakemake's plain info messages: while jobs run only these show (the rest is per-job chatter;
# it still goes to .snakemake/log/); before (dry runs, --report, --unlock, ...) all but set-up detail.
SETUP_INFO = (
    "Building DAG of jobs",
    "Using shell",
    "Assuming unrestricted shared filesystem",
    "Conda environments:",
    "Singularity containers:",
    "Group jobs:",
    "Rules claiming",
    "Provided ",
)
KEEP_INFO = (
    "Report created",
    "Nothing to be done",
    "This was a dry-run",
    "Complete log",
    "Trying to restart job",
    "Unlocked working directory",
    "Unlocking working directory",
)
INTERRUPTED = (
    "interrupted: {done} of {total} trials done and kept ({this_run} in this run); run the same command "
    "again to go on; progress: snaketune status"
)
INTERRUPTED_EARLY = snakemake_cli.EARLY
STOPPED = (
    "the run stopped (errors above); finished trials are kept: run the same command again to go on "
    "(after a kill: --unlock, then --rerun-incomplete); progress: snaketune status"
)
# Plain (not a terminal) progress: a line per tenth of the run, and at least this often (s),
# but not more often than PLAIN_MIN (s) unless it is the last.
PLAIN_EVERY = 60.0
PLAIN_MIN = 5.0
# Live line: redrawn at most this often (s).
LIVE_EVERY = 0.2


@dataclass
class RunInfo:
    """The header of a run: sent by the workflow when jobs are about to start (``onstart``)."""

    study: str
    out: str
    workdir: str
    trial_paths: list[str]
    n_configs: int
    n_folds: int
    refit: str
    where: str  # "2 cores", "executor slurm"
    adaptive: bool = False
    # Trial files there when the run starts: listed then, because Snakemake may delete and
    # restore some of them (a rerun batch) before the handler gets to read them.
    cached: list[str] = field(default_factory=list)

    def text(self) -> str:
        total, cached = len(self.trial_paths), len(self.cached)
        if self.adaptive:
            what = f"{total} budgeted trials ({self.n_folds} fold{'s' * (self.n_folds != 1)} each)"
        else:
            what = f"{total} trials ({self.n_configs} configurations x {self.n_folds} folds)"
        return (
            f"snaketune: study {self.study} -> {self.out}/\n"
            f"  {what}: {cached} done before, {total - cached} to run on {self.where}"
        )


@dataclass
class RunEnd:
    """The end of a run: ``ok`` and the summary text (top configurations, failures)."""

    ok: bool
    out: str
    summary: str = ""
    outputs: list[str] = field(default_factory=list)


def run_info(study, workflow) -> RunInfo:
    """The :class:`RunInfo` of a study about to run (called in ``onstart``)."""
    from snaketune.workflow.support import existing  # the workflow's own: loaded by then

    if workflow.local_exec:
        cores = workflow.global_resources["_cores"].value
        where = f"{cores} core{'s' if cores != 1 else ''}"
    else:
        where = f"executor {workflow.executor_plugin.name}"
    paths = list(study.trial_paths)
    return RunInfo(
        study=study.config["study"],
        out=study.out,
        workdir=os.getcwd(),
        trial_paths=paths,
        n_configs=len(study.strategy.layout.slots) if study.strategy.layout else len(study.plan.config_keys),
        n_folds=study.strategy.n_folds,
        refit=study.config["refit"],
        where=where,
        adaptive=study.strategy.budgeted,
        cached=existing(paths),
    )


def send(message: RunInfo | RunEnd, text: str) -> None:
    """Log ``message`` through Snakemake's logger (``text`` for loggers other than ours)."""
    from snakemake.logging import logger

    logger.info(text, extra={"snaketune": message})


def clock(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Trial counts and the best complete configuration, fed trial files as jobs finish."""

    def __init__(self, info: RunInfo):
        self.info = info
        self.planned = set(info.trial_paths)
        self.before = set(info.cached)
        self.start = time.monotonic()
        self.cached = len(self.before)
        self.done = self.ok = self.failed = self.timeout = 0
        self.folds: dict[tuple, dict[int, float]] = {}
        self.best: float | None = None
        self.seen: set[str] = set()

    @property
    def total(self) -> int:
        return len(self.planned)

    @property
    def to_run(self) -> int:
        return self.total - self.cached

    def trials_of(self, output: str) -> list[str]:
        """The trial files behind a job's output: itself, or those a batch manifest
        (``<out>/batches/<batch>.json``, ``{"trials": [file names]}``) lists."""
        if output in self.planned:
            return [output]
        out = self.info.out
        if not (output.startswith(f"{out}/batches/") and output.endswith(".json")):
            return []
        try:
            with open(os.path.join(self.info.workdir, output)) as fh:
                names = json.load(fh)["trials"]
        except (OSError, ValueError, KeyError, TypeError):
            return []
        return [f"{out}/trials/{name}" for name in names]

    def read_cached(self) -> None:
        for path in self.info.cached:
            self.add(path)

    def add(self, path: str) -> None:
        """Count a trial file (once); a file there before the run only adds its score."""
        from snaketune.evaluation.records import CorruptTrialError, read_record

        if path in self.seen or path not in self.planned:
            return
        try:
            record = read_record(os.path.join(self.info.workdir, path))
        except CorruptTrialError:
            return
        self.seen.add(path)
        if path not in self.before:
            self.done += 1
            status = record.status.value
            self.ok += status == "ok"
            self.failed += status == "error"
            self.timeout += status == "timeout"
        score = record.test_scores.get(self.info.refit) if record.status.value == "ok" else None
        folds = self.folds.setdefault((record.config_key, record.budget), {})
        folds[record.fold] = math.nan if score is None else float(score)
        if len(folds) == self.info.n_folds:
            mean = sum(folds.values()) / len(folds)
            if not math.isnan(mean) and (self.best is None or mean > self.best):
                self.best = mean

    def line(self, live: bool, steps: list[str] = ()) -> str:
        finished = self.cached + self.done
        pct = 100 * finished / self.total if self.total else 100.0
        elapsed = time.monotonic() - self.start
        parts = [f"{finished}/{self.total} trials ({pct:.0f}%)", f"{self.failed} failed"]
        if self.timeout:
            parts.append(f"{self.timeout} timed out")
        if self.best is not None:
            from snaketune.results.metrics import metric  # a loss shown as a loss, short name

            parts.append(f"best {metric(self.info.refit).label} {metric(self.info.refit).text(self.best)}")
        if 0 < self.done < self.to_run:
            parts.append(f"about {clock(elapsed / self.done * (self.to_run - self.done))} left")
        if steps and self.done == self.to_run:
            parts.append(f"now {', '.join(sorted(set(steps)))}")  # aggregation, plots, refit, report
        text = ", ".join(parts)
        return f"  {text}" if live else f"[{clock(elapsed)}] {text}"

    def end_line(self) -> str:
        elapsed = time.monotonic() - self.start
        timeout = f", {self.timeout} timed out" if self.timeout else ""
        return (
            f"ran {self.done} trial{'s' * (self.done != 1)} in {clock(elapsed)} ({self.ok} ok, "
            f"{self.failed} failed{timeout}); {self.cached} done before"
        )


@dataclass
class LogHandlerSettings(LogHandlerSettingsBase):
    jobs: bool = field(
        default=False,
        metadata={"help": "Print Snakemake's per-job listing (rule, inputs, outputs, reason) as without this logger."},
    )


class LogHandler(LogHandlerBase):
    """The quiet terminal (see the module docstring)."""

    def __post_init__(self) -> None:
        from snakemake.logging import DefaultFilter, DefaultFormatter

        s = self.common_settings
        self.stream = sys.stdout if s.stdout else sys.stderr
        self.full = bool(getattr(self.settings, "jobs", False) or s.printshellcmds or s.verbose)
        self.snake_filter = DefaultFilter(s.quiet, s.debug_dag, s.verbose, s.dryrun, s.printshellcmds)
        self.snake_format = DefaultFormatter(s.quiet, s.show_failed_logs)
        quiet = {str(q) for q in (s.quiet or ())}
        self.silent = "all" in quiet
        self.show_progress = "progress" not in quiet and not self.silent
        isatty = getattr(self.stream, "isatty", None)
        self.live = bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"
        self.progress: Progress | None = None
        self.job_outputs: dict[int, list[str]] = {}
        self.job_rules: dict[int, str] = {}  # running jobs
        self.last_line = ""
        self.live_shown = False
        self.last_draw = time.monotonic()
        self.last_decile = 0
        self.stats_shown = False
        self.ended = False
        self.interrupted = False
        self._watch_interrupt()
        # Between Snakemake's events: keep the time left moving, print a line that waited.
        import threading

        threading.Thread(target=self._tick, name="snaketune-progress", daemon=True).start()

    def _watch_interrupt(self) -> None:
        """Note a Ctrl-C (then Snakemake's own handling goes on as before).

        After it, the jobs that die of it and Snakemake's tracebacks say nothing the user needs:
        they are left out, and one line says what was kept and how to go on (:meth:`close`, or
        the end of the run).
        """
        import signal

        try:
            previous = signal.getsignal(signal.SIGINT)
        except ValueError:
            return

        def noted(signum, frame):
            self.interrupted = True
            if callable(previous):
                previous(signum, frame)
            elif previous != signal.SIG_IGN:
                raise KeyboardInterrupt

        try:
            signal.signal(signal.SIGINT, noted)
        except ValueError:  # not the main thread: no note, Snakemake's output as it is
            pass

    def interrupted_line(self) -> str:
        p = self.progress
        if p is None:
            return INTERRUPTED_EARLY
        # Counted on disk: jobs killed by the interrupt report nothing, and a batch's trials that
        # finished before it are whole files all the same.
        kept = sum(os.path.exists(os.path.join(p.info.workdir, t)) for t in p.planned)
        return INTERRUPTED.format(done=kept, total=p.total, this_run=max(0, kept - p.cached))

    def close(self) -> None:
        if self.interrupted and not self.ended:
            self.ended = True
            self.end_live()
            if snakemake_cli.tell_interrupt():
                self.write(self.interrupted_line())
        super().close()

    def _tick(self) -> None:
        while True:
            time.sleep(1.0)
            with self.lock:  # the lock emit() runs under
                if self.progress is None or self.ended:
                    continue
                if not self.live:
                    self.show_progress_now(tick=True)
                elif self.live_shown:
                    self.show_progress_now(force=True)

    @property
    def writes_to_stream(self) -> bool:
        return True

    @property
    def writes_to_file(self) -> bool:
        return False

    @property
    def has_filter(self) -> bool:
        return True

    @property
    def has_formatter(self) -> bool:
        return True

    @property
    def needs_rulegraph(self) -> bool:
        return False

    # ---- output ----------------------------------------------------------------------------
    def write(self, text: str) -> None:
        """A message on its own lines; the live progress line is redrawn below it."""
        if not text:
            return
        try:
            if self.live_shown:
                self.stream.write("\r\033[K")
            self.stream.write(text.rstrip("\n") + "\n")
            if self.live_shown:
                self.stream.write(self.last_line)
            self.stream.flush()
        except BrokenPipeError:  # the reader went away: drop the output, let the run go on
            self.stream = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the handler

    def end_live(self) -> None:
        if self.live_shown:
            self.stream.write("\r\033[K" + self.progress.line(live=True) + "\n")  # the final counts stay
            self.stream.flush()
            self.live_shown = False

    def show_progress_now(self, force: bool = False, tick: bool = False) -> None:
        p = self.progress
        if p is None or not self.show_progress or p.to_run == 0:
            return
        now = time.monotonic()
        if self.live:
            line = p.line(live=True, steps=list(self.job_rules.values()))
            if line != self.last_line and (force or now - self.last_draw >= LIVE_EVERY or p.done == p.to_run):
                self.stream.write("\r\033[K" + line)
                self.stream.flush()
                self.live_shown, self.last_draw, self.last_line = True, now, line
            return
        decile = 10 * p.done // p.to_run
        due = (p.done and decile > self.last_decile) or now - self.last_draw >= PLAIN_EVERY
        # Jobs that end together (a SLURM group) would give a line each: only the ticker prints
        # (a second later, with the counts of the whole burst), and only the last line at once.
        if due and (p.done == p.to_run or (tick and now - self.last_draw >= PLAIN_MIN)):
            self.write(p.line(live=False))
            self.last_decile, self.last_draw = decile, now

    # ---- records ---------------------------------------------------------------------------
    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._emit(record)
        except Exception:  # noqa: BLE001 - the terminal must never stop the run
            self.handleError(record)

    def _emit(self, record: logging.LogRecord) -> None:
        message = getattr(record, "snaketune", None)
        if isinstance(message, RunInfo):
            self.progress = Progress(message)
            self.progress.read_cached()
            self.last_draw = time.monotonic()
            if not self.silent:
                self.write(message.text())
                if self.live:
                    self.show_progress_now(force=True)
            return
        if isinstance(message, RunEnd):
            self.ended = True
            self.end_live()
            if self.interrupted:
                if snakemake_cli.tell_interrupt():
                    self.write(self.interrupted_line())
            elif not self.silent:
                self.write(self.end_text(message))
            return
        if self.interrupted and record.levelno >= logging.WARNING:
            return  # jobs killed by the Ctrl-C, Snakemake's traceback: the end line says it all
        event = getattr(record, "event", None)
        if event == LogEvent.JOB_INFO:
            outputs = [str(f).split(" (")[0] for f in getattr(record, "output", None) or []]
            self.job_outputs[record.jobid] = outputs
            self.job_rules[record.jobid] = record.rule_name
            self.show_progress_now()
        elif event == LogEvent.JOB_FINISHED and self.progress is not None:
            job = getattr(record, "job_id", None)
            self.job_rules.pop(job, None)
            for path in self.job_outputs.pop(job, []):
                for trial in self.progress.trials_of(path):
                    self.progress.add(trial)
            self.show_progress_now()
        if self.full:
            if self.snake_filter.filter(record):
                self.write(self.snake_format.format(record))
            return
        if self.silent and record.levelno < logging.ERROR:
            return
        if record.levelno >= logging.WARNING:
            self.write(self.snake_format.format(record))
        elif event == LogEvent.RUN_INFO and self.common_settings.dryrun and not self.stats_shown:
            self.stats_shown = True  # a dry run's answer: the jobs it would run
            self.write(self.snake_format.format(record))
        elif event is None:
            text = record.getMessage()
            if text.startswith(KEEP_INFO) or (self.progress is None and not text.startswith(SETUP_INFO)):
                self.write(text)

    def end_text(self, end: RunEnd) -> str:
        lines = []
        if self.progress is not None:
            lines.append(self.progress.end_line())
        if end.summary:
            lines.append(end.summary.strip("\n"))
        if end.ok and end.outputs:
            lines.append(f"outputs in {end.out}/: {', '.join(end.outputs)}")
        if not end.ok:
            lines.append(STOPPED)
        return "\n".join(lines)


LEADERBOARD_OUTPUTS = ("leaderboard.md", "leaderboard.csv", "best.json")
LATER_OUTPUTS = ("model.pkl", "plots/", "report/study.html")  # made from the leaderboard


def current_outputs(out: str) -> list[str]:
    """The study's outputs as of its leaderboard: a run's target may stop at the leaderboard (a
    search's ``aggregate``), so what is missing, or older than the leaderboard (an earlier full
    run's figures), is not listed."""
    board = Path(out, "leaderboard.csv")
    if not board.exists():
        return []
    since = board.stat().st_mtime_ns
    found = [name for name in LEADERBOARD_OUTPUTS if Path(out, name).exists()]
    return found + [name for name in LATER_OUTPUTS if _written_since(Path(out, name), since)]


def _written_since(path: Path, since: int) -> bool:
    try:
        if path.is_dir():
            return any(p.stat().st_mtime_ns >= since for p in path.iterdir())
        return path.stat().st_mtime_ns >= since
    except OSError:
        return False


def end_of_run(study, ok: bool) -> None:
    """Send the summary (``onsuccess``: top configurations and failures; ``onerror``: a hint)."""
    import contextlib
    import io

    from snaketune.workflow import printing

    summary = ""
    if ok:
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            printing.print_top(study)
        summary = buffer.getvalue()
    end = RunEnd(ok=ok, out=study.out, summary=summary, outputs=current_outputs(study.out))
    send(end, summary if ok else STOPPED)
    no_best = printing.no_best(study) if ok else None
    if no_best:
        # Every job succeeded, but the study has no result: one line and a failed run, no traceback.
        print(f"snaketune: {no_best}", file=sys.stderr, flush=True)
        raise SystemExit(1)


def start_of_run(study, workflow) -> None:
    """Send the header (``onstart``)."""
    info = run_info(study, workflow)
    send(info, info.text())
