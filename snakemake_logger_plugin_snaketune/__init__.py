"""Snakemake logger plugin ``snaketune`` (``snakemake --logger snaketune``).

Snakemake finds logger plugins as importable packages named ``snakemake_logger_plugin_<name>``;
the handler itself lives in :mod:`snaketune.workflow.terminal`.
"""

from snaketune.workflow.terminal import LogHandler, LogHandlerSettings

__all__ = ["LogHandler", "LogHandlerSettings"]
