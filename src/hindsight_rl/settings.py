"""Project settings: see https://docs.kedro.org/en/stable/kedro_project_setup/settings.html."""

import warnings

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

# Kedro 1.7's config loader and kedro-mlflow's hook call OmegaConf 2.4's deprecated
# register_new_resolver() six times a run; the warning is for them to act on, not for our
# users (36 lines of every log).
warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated",
                        category=UserWarning, module=r"kedro(_mlflow)?\.")

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
# (conf/<env>/parameters*.yml), never the DAG. Every target and source named here needs its
# values under `targets:` / `sources:` in the parameters, and the parameters may not name
# one missing here.
DAG_SHAPE = {
    # The default pipeline's targets: the sources each may transfer from (the probe picks one,
    # hindsight_rl.core.plan) and its training seeds (one branch of datasets per seed and arm).
    "targets": {
        "mountaincar": {"sources": ["cartpole"], "seeds": [0, 1, 2]},
        "cartpole_long_pole": {"sources": ["cartpole"], "seeds": [0, 1, 2]},
    },
    # `kedro run --pipeline transfer_suite`: source -> target pairs, 5 seeds per arm.
    "transfer_suite": {
        "suite_cartpole_mountaincar": {"sources": ["cartpole"], "seeds": [0, 1, 2, 3, 4]},
        "suite_cartpole_acrobot": {"sources": ["cartpole"], "seeds": [0, 1, 2, 3, 4]},
        "suite_long_pole": {"sources": ["cartpole"], "seeds": [0, 1, 2, 3, 4]},
        "suite_heavy_cart": {"sources": ["cartpole"], "seeds": [0, 1, 2, 3, 4]},
        "suite_mountaincar_gravity": {"sources": ["cartpole", "mountaincar"],
                                      "seeds": [0, 1, 2, 3, 4]},
        "suite_acrobot_heavy": {"sources": ["acrobot"], "seeds": [0, 1, 2, 3, 4]},
        "suite_mountaincar_force": {"sources": ["mountaincar"], "seeds": [0, 1, 2, 3, 4]},
        "suite_acrobot_light": {"sources": ["acrobot"], "seeds": [0, 1, 2, 3, 4]},
    },
    # `kedro run --pipeline continuous`: SAC on continuous-action targets, from a Discrete
    # source (MountainCar-v0's DQN: encoder and trunk carry over) and a continuous one.
    "continuous": {
        "mountaincar_continuous": {"sources": ["mountaincar"], "seeds": [0, 1, 2]},
        "pendulum_heavy": {"sources": ["pendulum"], "seeds": [0, 1, 2]},
    },
    # `kedro run --pipeline minigrid`: image observations, DQN with a convolutional encoder;
    # the 5x5, 6x6 and 8x8 rooms show the same 7x7 view, so the whole network carries over.
    # The 6x6 room is a stepping stone: each of its fine-tuned seeds is a candidate for 8x8.
    "minigrid": {
        "doorkey_6x6": {"sources": ["doorkey"], "seeds": [0, 1, 2]},
        "doorkey_8x8": {"sources": ["doorkey"], "stepping_stones": ["doorkey_6x6"],
                        "seeds": [0, 1, 2]},
    },
    # `kedro run --pipeline recurrent`: CartPole with its velocities hidden, a gru encoder
    # over the episode so far, the trunk carried over from the CartPole MLP.
    "recurrent": {
        "cartpole_novel": {"sources": ["cartpole"], "seeds": [0, 1, 2]},
    },
    # Seeds of an arm trained in one node, sharing each update (same weights in any grouping);
    # None: all of a target's seeds. 1 gives one task per seed, for a cluster with more
    # workers than arms.
    "seeds_per_node": None,
    # `kedro run --pipeline ablation`: the arms run on each ablated target, and their seeds.
    "ablation": {
        "targets": {
            "mountaincar": ["scratch", "transfer", "frozen", "unfreeze", "rtg", "her",
                            "everything"],
            "cartpole_long_pole": ["scratch", "transfer", "frozen", "teacher", "rtg"],
        },
        "seeds": [0, 1, 2, 3, 4],
    },
    # `kedro run --pipeline tune`: nodes that run the search's trials side by side, each its
    # share of tune.n_trials (parameters_tune.yml), against one Optuna storage.
    "tune": {"workers": 2},
}
