"""``snaketune watch [CONFIG] [--cores N]``: run a study again whenever its config (or a declared
input) is saved.

Each run goes through the warm engine (:mod:`snaketune.engine`), so a saved edit pays no
imports: only the trials the edit adds run (a reverted edit runs none), then the leaderboard,
plots and report pages are written again and the run's summary prints the new top 5. Files are
polled (mtime and size, every 0.1 s), which works on every file system and with editors that
save by renaming. Ctrl-C stops: during a run Snakemake stops and keeps finished trials.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

POLL_SECONDS = 0.1


def watched_files(config: Path) -> list[Path]:
    """The config and the inputs it declares (data files, a command's inputs); a config that
    does not parse yet is watched alone."""
    from snaketune.config.load import ConfigError, read_yaml

    files = [config]
    try:
        raw = read_yaml(config)
    except ConfigError:
        return files
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    for key in ("csv", "parquet", "arrays"):
        if isinstance(data.get(key), str):
            files.append(Path(data[key]))
    command = raw.get("command") if isinstance(raw.get("command"), dict) else {}
    files += [Path(p) for p in command.get("inputs", []) if isinstance(p, str)]
    return files


def snapshot(files: list[Path]) -> dict:
    """What tells a saved file: its mtime and size (None while it is missing)."""
    out = {}
    for path in files:
        try:
            stat = path.stat()
            out[str(path)] = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            out[str(path)] = None
    return out


def watch(config: str | Path, cores: int | str = "all", poll: float = POLL_SECONDS) -> int:
    """Run the study in the current folder now and after every save; returns the exit status
    (0 after Ctrl-C while waiting, 130 after Ctrl-C during a run)."""
    from snaketune import engine
    from snaketune.api import snakemake_command

    config = Path(config)
    if not config.is_file():
        print(f"watch: config file {str(config)!r} not found (relative to {Path.cwd()})", file=sys.stderr)
        return 2
    cmd = snakemake_command(config, cores)[3:]  # Snakemake's arguments, after `-m snaketune.runtime.snakemake_cli`
    seen = None
    try:
        while True:
            files = watched_files(config)
            now = snapshot(files)
            if now != seen:
                seen = now  # taken before the run: a save during the run starts another
                start = time.monotonic()
                code, interrupted = engine.run(cmd, Path.cwd())
                if interrupted:
                    print("watch: stopped during a run; finished trials are kept", flush=True)
                    return 130
                took = time.monotonic() - start
                outcome = "done" if code == 0 else f"failed (exit status {code})"
                names = ", ".join(str(f) for f in files)
                print(f"watch: run {outcome} in {took:.1f} s; waiting for a save of {names} (Ctrl-C stops)", flush=True)
            time.sleep(poll)
    except KeyboardInterrupt:
        print("watch: stopped", flush=True)
        return 0
    finally:
        engine.stop()
