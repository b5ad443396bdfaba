"""Project settings: see https://docs.kedro.org/en/stable/kedro_project_setup/settings.html."""

from kedro.config import OmegaConfigLoader

from hindsight_rl.hooks import (
    MlflowTrackingHook,
    RunManifestHook,
    TorchThreadsHook,
    ValidateParametersHook,
)

# MlflowTrackingHook does nothing unless kedro-mlflow (the `mlflow` extra, whose own hook
# registers itself) has an MLflow run open.
HOOKS = (ValidateParametersHook(), TorchThreadsHook(), RunManifestHook(), MlflowTrackingHook())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Environments (smoke, local) override single keys deep inside a section.
    "merge_strategy": {"parameters": "soft"},
    # kedro-airflow's DAG settings (schedule, retries) per pipeline.
    "config_patterns": {"airflow": ["airflow*", "airflow/**"]},
}

# The DAG's shape: which branches exist. This is structure, read once when pipelines are
# registered and the same in every config environment: `--env` and `--params` change values
# (conf/<env>/parameters*.yml), never the DAG. A target here needs its values under
# `targets:` in the parameters, and the parameters may not name a target missing here.
DAG_SHAPE = {
    # target namespace: its training seeds (one branch of datasets per seed, per arm)
    "targets": {"mountaincar": [0, 1, 2], "cartpole_long_pole": [0, 1, 2]},
    # seeds of an arm trained in one node, sharing each update (same weights in any grouping);
    # None: all of a target's seeds. 1 gives one task per seed, for a cluster with more
    # workers than arms.
    "seeds_per_node": None,
    # `kedro run --pipeline ablation`: the arms run on each ablated target, and their seeds
    "ablation": {
        "targets": {
            "mountaincar": ["scratch", "transfer", "frozen", "rtg", "her", "everything"],
            "cartpole_long_pole": ["scratch", "transfer", "frozen", "rtg"],  # no goal: no HER
        },
        "seeds": [0, 1, 2, 3, 4],
    },
}
