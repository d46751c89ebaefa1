"""The Python API: run a study from Python and read it as scikit-learn's searches are read.

A thin layer over the same files the workflow writes (no second pipeline): :func:`run` runs
Snakemake on the packaged workflow in a child process and returns :func:`load`'s :class:`Study`,
whose attributes read ``leaderboard.csv``, ``best.json``, ``model.pkl`` and the trial files.

>>> import snaketune
>>> study = snaketune.run("study.yaml", cores=2)            # doctest: +SKIP
>>> study.best_params_, study.best_score_                   # doctest: +SKIP
>>> snaketune.load("results/knn-iris").leaderboard.head()   # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from snaketune.base.paths import profile_path, snakefile
from snaketune.config.load import ConfigError, load_config, read_yaml


class RunError(RuntimeError):
    """Snakemake ended with an error; ``returncode`` is its exit status."""

    def __init__(self, message: str, returncode: int):
        super().__init__(message)
        self.returncode = returncode


def snakemake_command(
    configfile: str | Path | None,
    cores: int | str | None = "all",
    profile: str | Path | None = None,
    snakemake_args: Sequence[str] = (),
) -> list[str]:
    """The Snakemake command line that runs a study on the packaged workflow.

    ``profile`` is a folder, or the name of a shipped profile (``slurm``); the shipped default
    profile (quiet terminal, greedy scheduler) applies under it, as Snakemake applies a workflow's
    ``profiles/default``. ``cores=None`` leaves the core count to the profile or the arguments.
    """
    cmd = [sys.executable, "-m", "snaketune.runtime.snakemake_cli", "-s", str(snakefile())]
    if configfile is not None:
        cmd += ["--configfile", str(configfile)]
    if profile is not None:
        cmd += ["--profile", str(resolve_profile(profile))]
    if cores is not None and not _sets_cores(snakemake_args):
        cmd += ["--cores", str(cores)]
    return cmd + [str(a) for a in snakemake_args]


def resolve_profile(profile: str | Path) -> str | Path:
    """A profile folder as given, else a shipped profile of that name, else the name as is
    (Snakemake then looks in its own profile folders)."""
    if Path(profile).is_dir():
        return profile
    return profile_path(str(profile)) or profile


def _sets_cores(args: Sequence[str]) -> bool:
    return any(a in ("-c", "-j", "--cores", "--jobs") or a.startswith(("--cores=", "--jobs=")) for a in args)


def run(
    config: str | Path | Mapping,
    cores: int | str | None = "all",
    profile: str | Path | None = None,
    workdir: str | Path = ".",
    snakemake_args: Sequence[str] = (),
) -> Study:
    """Run a study (what is not done yet) and return it.

    Parameters
    ----------
    config : path or dict
        A study config file, or the config itself; a dict is written to
        ``<workdir>/<output_dir>/<study>/.snaketune/config.yaml`` for Snakemake to read.
    cores : int or "all", optional
        Snakemake's ``--cores``; None leaves it to ``profile`` (a cluster profile sets ``jobs``).
    profile : str or path, optional
        A Snakemake profile folder, or ``"slurm"`` for the shipped SLURM profile.
    workdir : path
        The folder the study runs in: outputs go to ``<workdir>/<output_dir>/<study>/`` and
        relative data paths are read from it.
    snakemake_args : sequence of str
        More Snakemake options, e.g. ``["--rerun-incomplete"]``.

    Raises
    ------
    ConfigError
        The config is invalid (one line per problem, as the command prints); nothing ran.
    RunError
        Snakemake ended with an error (its output went to this process's terminal).
    """
    workdir = Path(workdir).resolve()
    if isinstance(config, Mapping):
        validated = load_config(copy.deepcopy(dict(config)), workdir)
        configfile = _study_folder(validated, workdir) / ".snaketune" / "config.yaml"
        write_config(configfile, dict(config))
    else:
        configfile = Path(workdir, config)
        validated = load_config(read_yaml(configfile), workdir)
    cmd = snakemake_command(configfile, cores, profile, snakemake_args)
    # Outside a terminal (a notebook: its sys.stdout is not file 1) the output is copied there.
    code, interrupted = run_snakemake(cmd, workdir, copy_output=not _is_terminal(sys.stdout))
    if interrupted:
        raise KeyboardInterrupt  # Snakemake stopped; its finished trials are kept
    if code != 0:
        raise RunError(f"snakemake exited with status {code} (study {validated['study']!r}; see its output)", code)
    return Study(workdir, validated, configfile)


def run_snakemake(cmd: list[str], cwd: str | Path | None = None, copy_output: bool = False) -> tuple[int, bool]:
    """Run Snakemake (``cmd``) as a child; return its exit status and whether it was interrupted.

    The child has its own process group, so a Ctrl-C (a terminal's, or a notebook's stop button)
    reaches it exactly once, passed on from here, and never reaches its jobs directly: Snakemake
    stops them itself (they would otherwise each die of it with a traceback) and keeps every
    finished trial. It starts with SIGINT ignored and sets its handler first thing
    (``runtime/snakemake_cli.py``); an interrupt is held here until then, so none lands in
    Python's start-up as a traceback. SIGTERM is passed on. With ``copy_output`` its output
    (stdout and stderr) is copied to ``sys.stdout`` line by line, else it writes to this process's
    files. Signals are caught only from the main thread; the caller's handlers are restored.
    """
    import signal
    import threading

    interrupts, pending, child = [], [], []

    def hold(signum, frame):
        interrupts.append(signum)
        pending.append(signum)

    def pass_on(signum, frame):
        for proc in child:
            proc.send_signal(signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum, handler in ((signal.SIGINT, hold), (signal.SIGTERM, pass_on)):
            previous[signum] = signal.signal(signum, handler)
    try:
        pipe = subprocess.PIPE if copy_output else None
        proc = subprocess.Popen(  # noqa: PLW1509 - preexec_fn only sets a signal disposition
            cmd,
            cwd=cwd,
            process_group=0,
            preexec_fn=_ignore_sigint,
            stdout=pipe,
            stderr=subprocess.STDOUT if copy_output else None,
            text=True,
        )
        child.append(proc)
        reader = threading.Thread(target=_copy_lines, args=(proc.stdout,), daemon=True) if copy_output else None
        if reader is not None:
            reader.start()
        while True:
            try:
                code = proc.wait(timeout=0.05)
                break
            except subprocess.TimeoutExpired:
                if pending and _catches_sigint(proc.pid):
                    pending.pop()
                    proc.send_signal(signal.SIGINT)
        if reader is not None:
            reader.join()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return code, bool(interrupts)


def _copy_lines(stream) -> None:
    for line in stream:
        sys.stdout.write(line)
        sys.stdout.flush()


def _ignore_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _catches_sigint(pid: int) -> bool:
    """Whether process ``pid`` has its own SIGINT handler (Linux ``/proc``; elsewhere: yes)."""
    import signal

    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    return True


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty() and stream.fileno() == 1
    except (AttributeError, OSError, ValueError):
        return False


def write_config(path: Path, config: dict) -> None:
    """Write a study config as YAML (atomically: a running study never reads half of it)."""
    import yaml

    from snaketune.base.jsonutil import to_jsonable, write_bytes_atomic

    # a temp name of its own: two writers never share one (and the umask is honoured)
    write_bytes_atomic(path, yaml.safe_dump(to_jsonable(config), sort_keys=False).encode(), sync=False)


def _study_folder(config: dict, workdir: Path) -> Path:
    return workdir / config["output_dir"] / config["study"]


def load(path: str | Path = "config.yaml", workdir: str | Path | None = None) -> Study:
    """A study that ran or is running, from its folder (``results/<study>``) or its config file.

    A config file's study is looked for where Snakemake would write it: ``workdir`` (default: the
    current folder). A study folder needs nothing else: its last run left its validated config in
    ``.snaketune/``.
    """
    path = Path(path)
    if path.is_dir():
        config = _saved_config(path)
        folder = path.resolve()
        parts = Path(config["output_dir"]).parts + (config["study"],)
        root = folder.parents[len(parts) - 1]  # <workdir>/<output_dir>/<study> -> <workdir>
        return Study(root, config)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: neither a study folder nor a config file")
    root = Path(workdir or ".").resolve()
    return Study(root, load_config(read_yaml(path), root, check_data=False), path.resolve())


def _saved_config(folder: Path) -> dict:
    plans = sorted((folder / ".snaketune").glob("plan-*.json"), key=lambda p: p.stat().st_mtime)
    for plan in reversed(plans):
        try:
            return load_config(json.loads(plan.read_text())["config"], folder, check_data=False)
        except (OSError, ValueError, KeyError, ConfigError):
            continue
    raise FileNotFoundError(f"{folder}: not a study folder (no .snaketune/plan-*.json: has a study run there?)")


class Study:
    """One study's results, with the attributes of scikit-learn's fitted searches.

    Every attribute reads the study's files when asked, so a running study shows its latest
    state; ``best_estimator_`` is loaded once.
    """

    def __init__(self, workdir: str | Path, config: dict, configfile: str | Path | None = None):
        self.workdir = Path(workdir)
        self.config = config
        self.configfile = Path(configfile) if configfile else None

    def __repr__(self) -> str:
        return f"Study({self.name!r}, path={str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.config["study"]

    @property
    def path(self) -> Path:
        """The study's output folder, ``<workdir>/<output_dir>/<study>``."""
        return _study_folder(self.config, self.workdir)

    def _read(self, name: str) -> Path:
        path = self.path / name
        if not path.exists():
            raise FileNotFoundError(f"{path} not written yet: the study has not finished (see .status())")
        return path

    @property
    def leaderboard(self):
        """``leaderboard.csv`` as a DataFrame: one row per configuration, in search order, with
        ``cv_results_``'s columns (``params`` as JSON text)."""
        import pandas as pd

        return pd.read_csv(self._read("leaderboard.csv"), dtype={"config_key": str})

    @property
    def cv_results_(self) -> dict:
        """The leaderboard as scikit-learn's ``cv_results_``: arrays by column, ``params`` a list
        of dicts, ``param_<name>`` masked object arrays (masked where a row lacks the parameter)."""
        frame = self.leaderboard
        params = [json.loads(text) for text in frame["params"]]
        results: dict = {}
        for column in frame.columns:
            if column == "params":
                results["params"] = params
            elif column.startswith("param_"):
                name = column.removeprefix("param_")
                values = np.ma.MaskedArray(np.empty(len(params), dtype=object), mask=True)
                for i, p in enumerate(params):
                    if name in p:
                        values[i] = p[name]
                results[column] = values
            else:
                results[column] = frame[column].to_numpy()
        return results

    @property
    def best(self) -> dict:
        """``best.json``: the chosen configuration, its scores and the run's failure summary."""
        return json.loads(self._read("best.json").read_text())

    @property
    def best_index_(self) -> int:
        return int(self.best["index"])

    @property
    def best_params_(self) -> dict:
        return self.best["params"]

    @property
    def best_score_(self) -> float:
        return float(self.best["mean_test_score"])

    @property
    def refit_(self) -> dict:
        """``refit.json``: the refit's parameters, time and held-out scores."""
        return json.loads(self._read("refit.json").read_text())

    @cached_property
    def best_estimator_(self):
        """The best configuration refitted on all training rows (``model.pkl``; loading a pickle
        runs code: load only studies you trust)."""
        import pickle

        with self._read("model.pkl").open("rb") as handle:
            return pickle.load(handle)  # noqa: S301 - our own refit's output, documented above

    @property
    def trials(self):
        """One row per trial of the study's plan: status (``ok``, ``error``, ``timeout`` or
        ``pending``), scores, times and error, in leaderboard order."""
        import pandas as pd

        from snaketune.results.status import read_finished, study_plan, trial_rows

        plan, slots = study_plan(self.config, self.workdir)
        rows = []
        for row, paths in enumerate(trial_rows(plan, slots)):
            records = read_finished(self.workdir / p for p in paths)
            for path in paths:
                trial_id = Path(path).stem
                record = records.get(trial_id)
                entry = {"row": row, "trial_id": trial_id, "status": "pending"}
                if record is not None:
                    entry.update(
                        config_key=record.config_key,
                        fold=record.fold,
                        status=record.status.value,
                        params=json.dumps(record.params, sort_keys=True, default=str),
                        fit_time=record.fit_time,
                        score_time=record.score_time,
                        error=record.error,
                        **{f"test_{m}": v for m, v in record.test_scores.items()},
                        **{f"train_{m}": v for m, v in record.train_scores.items()},
                    )
                rows.append(entry)
        return pd.DataFrame(rows)

    def status(self, top: int = 5):
        """Progress: a :class:`snaketune.results.status.Status` (``done``, ``total``, ``failed``,
        ``remaining`` seconds, ``top``), as ``snaketune status`` prints it."""
        from snaketune.results.status import collect, study_plan

        plan, slots = study_plan(self.config, self.workdir)
        return collect(self.config, plan, top_n=top, slots=slots, root=self.workdir)

    def report(self, path: str | Path | None = None) -> Path:
        """Write Snakemake's self-contained HTML report of the study; returns its path
        (default ``<study>/report.html``)."""
        target = Path(path) if path else self.path / "report.html"
        configfile = self.configfile
        if configfile is None:
            configfile = self.path / ".snaketune" / "config.yaml"
            write_config(configfile, self.config)
        cmd = snakemake_command(configfile, cores=None, snakemake_args=["--report", str(target.resolve())])
        proc = subprocess.run(cmd, cwd=self.workdir, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RunError(f"report failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}", proc.returncode)
        return target


# `snaketune init NAME`: the shipped file (relative to the workflow's folder), what it is, and the
# files it needs beside it (shipped path -> path written).
EXAMPLES: dict[str, tuple[str, str]] = {
    "default": ("config.yaml", "SVC on digits, C x gamma log grid, 20 % held out (150 trials)"),
    "knn-iris": ("examples/knn-iris.yaml", "kNN on iris, k 1..30 x four distances (600 trials)"),
    "svc-digits": ("examples/svc-digits.yaml", "SVC on digits, 60 log-uniform samples of C, gamma, tol (300 trials)"),
    "svc-digits-tpe": ("examples/svc-digits-tpe.yaml", "the same space searched by Optuna's TPE in rounds"),
    "penguins": ("examples/penguins.yaml", "a real table (CSV, text columns, missing values), ColumnTransformer"),
    "flights": ("examples/flights.yaml", "a real regression table (50,000 flights, Parquet), gradient boosting"),
    "mlp-circles-hyperband": ("examples/mlp-circles-hyperband.yaml", "Hyperband over an MLP on 4-class circles"),
    "command": ("examples/command/study.yaml", "your own training script (train.py) as the trial, random search"),
    "command-hyperband": ("examples/command/hyperband.yaml", "Hyperband over your own training script"),
}
_EXAMPLE_FILES = {
    "penguins": {"examples/data/penguins.csv": "data/penguins.csv"},
    "flights": {"examples/data/flights.parquet": "data/flights.parquet"},
    "command": {"examples/command/train.py": "train.py"},
    "command-hyperband": {"examples/command/train.py": "train.py"},
}


def init_example(name: str = "default", directory: str | Path = ".", force: bool = False) -> list[Path]:
    """Write example ``name`` into ``directory`` as ``config.yaml`` (plus its data or script);
    returns the paths written, the config first. Existing files are kept unless ``force``."""
    from snaketune.base.paths import workflow_root

    if name not in EXAMPLES:
        raise KeyError(f"no example {name!r}; examples: {', '.join(EXAMPLES)}")
    root, directory = workflow_root(), Path(directory)
    shipped, _ = EXAMPLES[name]
    files = {"config.yaml": _as_starter(name, (root / shipped).read_text())}
    for source, target in _EXAMPLE_FILES.get(name, {}).items():
        files[target] = (root / source).read_bytes()
    existing = [str(directory / t) for t in files if (directory / t).exists()]
    if existing and not force:
        raise FileExistsError(f"{', '.join(existing)} exist(s): keep them, or pass --force to overwrite")
    written = []
    for target, content in files.items():
        path = directory / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        written.append(path)
    return written


def _as_starter(name: str, text: str) -> str:
    """An example's YAML as a starter config: data paths beside it, and the repository's run
    instructions replaced by ours."""
    keep = [
        line
        for line in text.splitlines()
        if not (line.startswith("#") and ("snakemake " in line or "python -m snaketune" in line or "Run " in line))
    ]
    header = f"# Written by `snaketune init {name}`. Run it here with:  snaketune run --cores 2\n"
    return header + "\n".join(keep).replace("examples/data/", "data/") + "\n"
