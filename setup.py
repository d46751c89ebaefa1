"""The wheel carries the workflow: build_py copies the repository's workflow files into
snaketune/_bundle/ of the built package, laid out as here.

Kept at the top level of the repository (the layout Snakemake workflows use, and `snakemake
--cores N` in a clone keeps working); copied only into what is built, never into the source tree.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# What a wheel ships from the repository root into snaketune/_bundle/ (MANIFEST.in lists the same
# for an sdist); snaketune.base.paths finds it there.
BUNDLED = (
    "Snakefile",
    "config.yaml",
    "workflow/rules",
    "workflow/schemas",
    "workflow/report",
    "workflow/profiles",
    "profiles/default",
    "scripts/job_client.py",
    "envs",
    "examples",
)
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "results", ".snakemake")


class BuildWithWorkflow(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install uses the clone itself (snaketune.base.paths)
        bundle = Path(self.build_lib) / "snaketune" / "_bundle"
        for name in BUNDLED:
            source, target = ROOT / name, bundle / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, ignore=SKIP, dirs_exist_ok=True)
            else:
                shutil.copy2(source, target)


setup(cmdclass={"build_py": BuildWithWorkflow})
