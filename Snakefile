# snaketune: one Snakemake job per (configuration, fold) trial, then a leaderboard.
# All logic lives in the snaketune package; rule files only wire files together.
from snakemake.utils import min_version

min_version("9.0")


include: "workflow/rules/common.smk"
include: "workflow/rules/prepare.smk"


if ADAPTIVE:

    include: "workflow/rules/adaptive.smk"

elif STUDY.optuna:

    include: "workflow/rules/optuna.smk"

else:

    include: "workflow/rules/trials.smk"


include: "workflow/rules/aggregate.smk"


if STUDY.nested is not None:

    include: "workflow/rules/nested.smk"


if COMMAND:

    include: "workflow/rules/command.smk"


localrules:
    all,


rule all:
    default_target: True
    input:
        final_outputs(),
