"""Layer 3, the study config: YAML reading and JSON-schema validation (`load`), checks
against scikit-learn and the data (`checks`). `python -m snaketune.config FILE` checks a file."""
