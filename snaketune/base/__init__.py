"""Layer 1, the base: data sources and prepared arrays (`data`), CV splits (`splits`), building
estimators from the allow-list (`estimator`), canonical JSON, hashes and atomic writes
(`jsonutil`), process helpers (`procs`). Imports nothing else from snaketune."""
