import numpy as np
import pytest

from hindsight_rl.core.config import (
    ConfigError,
    EnvConfig,
    GoalConfig,
    NetworkConfig,
    ProjectConfig,
    from_mapping,
)
from hindsight_rl.core.envs import check_environments, env_info, make_env, without_goal
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.policy_file import Policy, env_config_of, policy_to_bytes, read_document


def _next_state(config: EnvConfig) -> np.ndarray:
    env = make_env(config)
    env.reset(seed=0)
    env.unwrapped.state = np.array([0.0, 0.0, 0.1, 0.0])
    next_obs, *_ = env.step(1)
    return next_obs


def test_cartpole_override_recomputes_derived_attributes():
    env = make_env(EnvConfig(id="CartPole-v1", overrides={"length": 1.0, "masspole": 0.2}))
    assert env.unwrapped.polemass_length == pytest.approx(0.2 * 1.0)
    assert env.unwrapped.total_mass == pytest.approx(1.0 + 0.2)


def test_long_pole_changes_the_dynamics():
    default = _next_state(EnvConfig(id="CartPole-v1"))
    long_pole = _next_state(EnvConfig(id="CartPole-v1", overrides={"length": 1.0}))
    # Gymnasium caches polemass_length in __init__: with a stale cache the angular
    # acceleration (obs[3]) would not move at all.
    assert abs(long_pole[3] - default[3]) > 1e-3


def test_unknown_override_names_the_attribute():
    with pytest.raises(ConfigError, match="env.overrides.lenght"):
        make_env(EnvConfig(id="CartPole-v1", overrides={"lenght": 1.0}))


def test_unknown_env_suggests_close_ids():
    with pytest.raises(ConfigError, match="CartPole-v1"):
        make_env(EnvConfig(id="CartPol-v1"))


def test_unsupported_action_space_is_refused():
    with pytest.raises(ConfigError, match="supported: Discrete"):
        make_env(EnvConfig(id="Pendulum-v1"))


def test_env_info_reports_threshold_and_time_limit():
    info = env_info(EnvConfig(id="MountainCar-v0"))
    assert (info.obs_dim, info.n_actions) == (2, 3)
    assert info.reward_threshold == -110.0 and info.max_episode_steps == 200


CUSTOM = EnvConfig(id="CustomCorridor-v0", entry_point="tests.conftest:CorridorEnv",
                   max_episode_steps=4, reward_threshold=-2.5, success="terminated")


def test_custom_env_by_entry_point_from_config_alone():
    info = env_info(CUSTOM)
    assert (info.obs_dim, info.n_actions) == (1, 2)
    assert (info.max_episode_steps, info.reward_threshold) == (4, -2.5)


def test_a_custom_env_travels_in_the_policy_file_without_its_code():
    policy = Policy(network=QNetwork(1, 2, NetworkConfig(hidden_sizes=(4, 4))), env=CUSTOM,
                    gamma=0.9)
    document = read_document(policy_to_bytes(policy))
    assert "entry_point" not in document["env"]
    assert env_config_of(document) == CUSTOM.model_copy(update={"entry_point": None})
    assert env_config_of(document, "tests.conftest:CorridorEnv") == CUSTOM


def test_unimportable_entry_point_is_a_clear_error():
    with pytest.raises(ConfigError, match="env.entry_point: cannot import 'nowhere:Env'"):
        make_env(EnvConfig(id="Nowhere-v0", entry_point="nowhere:Env"))


def test_stopping_on_a_threshold_needs_an_env_that_has_one():
    no_threshold = {"id": "NoThreshold-v0", "entry_point": "tests.conftest:CorridorEnv",
                    "max_episode_steps": 4}
    project = from_mapping(ProjectConfig, {
        "sources": {"nt": {"env": no_threshold, "dqn": {"stop_on_threshold": True}}},
        "targets": {"mc": {"env": {"id": "MountainCar-v0"}}}})
    with pytest.raises(ConfigError,
                       match="sources.nt.dqn.stop_on_threshold: NoThreshold-v0 has no"):
        check_environments(project)


def test_goal_is_appended_to_observations_with_the_bounds_it_is_compared_with():
    config = EnvConfig(id="MountainCar-v0", goal=GoalConfig(achieved=(0,), desired=(0.5,)))
    env = make_env(config)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3,) and obs[2] == np.float32(0.5)
    assert env_info(config).obs_low.tolist() == pytest.approx([-1.2, -0.07, -1.2])
    assert make_env(without_goal(config)).reset(seed=0)[0].shape == (2,)


def test_goal_index_outside_the_observation_is_a_config_error():
    config = EnvConfig(id="MountainCar-v0", goal=GoalConfig(achieved=(2,), desired=(0.5,)))
    with pytest.raises(ConfigError, match="env.goal.achieved: index 2 is outside"):
        make_env(config)
