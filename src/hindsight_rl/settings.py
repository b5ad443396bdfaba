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
