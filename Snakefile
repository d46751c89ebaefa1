# snaketune: one Snakemake job per (configuration, fold) trial, then a leaderboard.
# All logic lives in the snaketune package; rule files only wire files together.
from snakemake.utils import min_version

min_version("9.0")


include: "workflow/rules/common.smk"
include: "workflow/rules/prepare.smk"


# The search strategy's own steps (snaketune/strategies/: its rule_files), then the one trial
# rule, whose jobs the strategy (and nested CV) lists.
for _rule_file in STUDY.strategy.rule_files:

    include: f"workflow/rules/{_rule_file}"


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
