"""Where the workflow files are: inside the installed package, or beside it in a source checkout.

A wheel carries the workflow (``Snakefile``, rule files, schema, report templates, profiles, the
job client, the conda env and the examples) as package data in ``snaketune/_bundle/``, laid out
as in the repository, so every relative path between them holds in both places. A source checkout
(``make install``: an editable install naming the clone) has no bundle and uses the clone itself.
"""

from __future__ import annotations

from pathlib import Path

# The folder that holds the ``snaketune`` package: site-packages, or the clone.
PACKAGE_PARENT = Path(__file__).resolve().parents[2]
_BUNDLE = PACKAGE_PARENT / "snaketune" / "_bundle"


def workflow_root() -> Path:
    """The folder of the ``Snakefile`` that runs studies (``workflow.basedir``)."""
    return _BUNDLE if (_BUNDLE / "Snakefile").is_file() else PACKAGE_PARENT


def snakefile() -> Path:
    return workflow_root() / "Snakefile"


def schema_path() -> Path:
    return workflow_root() / "workflow" / "schemas" / "config.schema.yaml"


def profile_path(name: str) -> Path | None:
    """A shipped profile by name (``slurm``; ``default`` is applied by Snakemake by itself)."""
    for folder in (workflow_root() / "workflow" / "profiles" / name, workflow_root() / "profiles" / name):
        if (folder / "config.yaml").is_file():
            return folder
    return None


def examples_root() -> Path:
    return workflow_root() / "examples"
