"""snaketune: reproducible, parallel hyperparameter search for scikit-learn, driven by Snakemake.

The package holds all logic; the workflow's rules and scripts only call into it. Modules import
scikit-learn lazily where they can, because the Snakefile imports this package at parse time.

Public API (:mod:`snaketune.api`): :func:`run` a study from a config file or dict, :func:`load`
one that ran, and read it as a :class:`Study` with scikit-learn's search attributes;
:func:`snakefile` is the packaged workflow, for Snakemake's ``module`` directive.
:class:`GridSearchCV` and :class:`RandomizedSearchCV` (:mod:`snaketune.search_cv`) are
scikit-learn's searches whose trials are stored and never computed twice.
"""

__version__ = "0.1.0"
__all__ = ["ConfigError", "GridSearchCV", "RandomizedSearchCV", "RunError", "Study", "load", "run", "snakefile"]


def __getattr__(name: str):
    # Loaded on first use: the Snakefile and every job import this package, and need none of it.
    if name == "ConfigError":
        from snaketune.config.load import ConfigError

        return ConfigError
    if name in ("GridSearchCV", "RandomizedSearchCV"):
        from snaketune import search_cv

        return getattr(search_cv, name)
    if name in ("RunError", "Study", "load", "run", "snakefile"):
        from snaketune import api

        return getattr(api, name)
    raise AttributeError(f"module 'snaketune' has no attribute {name!r}")
