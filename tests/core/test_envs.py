import math

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

from hindsight_rl.core.config import (
    ConfigError,
    ConvConfig,
    EnvConfig,
    GoalConfig,
    NetworkConfig,
    ObservationConfig,
    ProjectConfig,
    from_mapping,
)
from hindsight_rl.core.envs import (
    check_environments,
    check_table_fits,
    env_info,
    make_env,
    without_goal,
)
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.policy_file import Policy, env_config_of, policy_to_bytes, read_document
from hindsight_rl.core.rollouts import collect_rollouts
from hindsight_rl.core.trajectories import TrajectoryTableError, to_table


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


@pytest.mark.parametrize("name", ["DictActions", "MatrixActions", "UnboundedActions"])
def test_unsupported_action_space_is_refused(name):
    config = EnvConfig(id=f"{name}-v0", entry_point=f"tests.core.action_spaces:{name}")
    with pytest.raises(ConfigError, match=f"^env.id: {name}-v0 has action space .*; "
                                          "supported: Discrete, or a 1-d Box with finite "
                                          "bounds$"):
        make_env(config)


@pytest.mark.parametrize(("env_id", "low", "high"), [("Pendulum-v1", [-2.0], [2.0]),
                                                     ("MountainCarContinuous-v0", [-1.0],
                                                      [1.0])])
def test_continuous_tasks_pass_the_space_check_and_report_their_bounds(env_id, low, high):
    info = env_info(EnvConfig(id=env_id))
    assert info.continuous and info.n_actions is None and info.action_dim == 1
    assert info.action_low.dtype == np.float32 and info.action_high.dtype == np.float32
    assert info.action_low.tolist() == low and info.action_high.tolist() == high


def test_discrete_tasks_report_no_bounds():
    info = env_info(EnvConfig(id="CartPole-v1"))
    assert not info.continuous and info.n_actions == 2 and info.action_dim == 0
    assert info.action_low is None and info.action_high is None


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


# --- Thresholds only with the env's own time limit -------------------------------------

def test_a_shorter_time_limit_on_an_env_with_a_threshold_is_refused():
    """With 5-step episodes every MountainCar policy returns -5 >= -110: "solved"."""
    with pytest.raises(ConfigError, match=(
            r"env.make_kwargs.max_episode_steps: got 5, but MountainCar-v0's reward threshold "
            r"\(-110\) holds for its own time limit \(200 steps\) only")):
        make_env(EnvConfig(id="MountainCar-v0", make_kwargs={"max_episode_steps": 5}))
    project = from_mapping(ProjectConfig, {
        "sources": {"cp": {"env": {"id": "CartPole-v1"}}},
        "targets": {"mc": {"env": {"id": "MountainCar-v0",
                                   "make_kwargs": {"max_episode_steps": 1000}}}}})
    with pytest.raises(ConfigError, match="^targets.mc.env.make_kwargs.max_episode_steps: "
                                          "got 1000"):
        check_environments(project)


@pytest.mark.parametrize(("env_id", "key", "value", "problem"), [
    ("MountainCar-v0", "max_episode_steps", 5, "set only with env.entry_point"),
    ("Pendulum-v1", "max_episode_steps", 5, "set only with env.entry_point"),
    ("MountainCar-v0", "reward_threshold", -300.0,
     r"MountainCar-v0 has its own reward threshold \(-110\), which applies"),
    ("CartPole-v1", "reward_threshold", -200.0,
     r"CartPole-v1 has its own reward threshold \(475\), which applies"),
])
def test_registration_settings_on_a_registered_env_are_refused_not_ignored(env_id, key, value,
                                                                          problem):
    project = from_mapping(ProjectConfig, {
        "sources": {"cp": {"env": {"id": "CartPole-v1"}}},
        "targets": {"t": {"env": {"id": env_id, key: value}}}})
    with pytest.raises(ConfigError, match=f"^targets.t.env.{key}: {problem}"):
        check_environments(project)


def test_a_threshold_for_a_registered_env_without_one_is_accepted_and_reported():
    """Pendulum-v1 is registered without a threshold: steps-to-threshold needs one."""
    assert env_info(EnvConfig(id="Pendulum-v1")).reward_threshold is None
    pendulum = {"id": "Pendulum-v1", "reward_threshold": -200.0}
    project = from_mapping(ProjectConfig, {
        "sources": {"cp": {"env": {"id": "CartPole-v1"}}},
        "targets": {"p": {"env": pendulum, "algorithm": "sac",
                          "sac": {"stop_on_threshold": True},
                          "collect": {"policy": "uniform"}}}})
    check_environments(project)
    info = env_info(EnvConfig(**pendulum))
    assert info.reward_threshold == -200.0 and info.max_episode_steps == 200


@pytest.mark.parametrize(("env_id", "algorithm", "expected"), [
    ("Pendulum-v1", "dqn", "got 'dqn', but Pendulum-v1 has continuous actions; expected 'sac'"),
    ("CartPole-v1", "sac", "got 'sac', but CartPole-v1 has Discrete actions; expected 'dqn'")])
def test_the_algorithm_must_fit_the_action_space(env_id, algorithm, expected):
    project = from_mapping(ProjectConfig, {
        "sources": {"s": {"env": {"id": env_id}, "algorithm": algorithm}}})
    with pytest.raises(ConfigError, match=f"sources.s.algorithm: {expected}"):
        check_environments(project)


def test_the_env_s_own_time_limit_and_limits_of_envs_without_a_threshold_are_allowed():
    assert env_info(EnvConfig(id="MountainCar-v0",
                              make_kwargs={"max_episode_steps": 200})).max_episode_steps == 200
    no_threshold = EnvConfig(id="LimitedCorridor-v0", entry_point="tests.conftest:CorridorEnv",
                             max_episode_steps=4, make_kwargs={"max_episode_steps": 2})
    env = make_env(no_threshold)
    env.reset(seed=0)
    env.step(0)
    assert env.step(0)[3], "the shorter limit truncates after 2 steps"


# --- All settings checked before any work ------------------------------------------------

@pytest.mark.parametrize(("make_kwargs", "problem"), [
    ({"goal_velocit": 0.1}, "env.make_kwargs.goal_velocit: MountainCar-v0 takes no keyword "
                            "'goal_velocit'; did you mean 'goal_velocity'"),
    ({"goal_velocity": "fast"}, "env.make_kwargs.goal_velocity: got 'fast', expected a finite "
                                "number"),
    ({"render_mode": "window"}, r"env.make_kwargs.render_mode: got 'window', expected null or "
                                r"one of \['human', 'rgb_array'\]"),
    ({"max_episode_steps": 2.5}, "env.make_kwargs.max_episode_steps: got 2.5, expected an "
                                 "integer >= 1"),
])
def test_make_kwargs_are_checked_by_name_and_kind(make_kwargs, problem):
    with pytest.raises(ConfigError, match=problem):
        make_env(EnvConfig(id="MountainCar-v0", make_kwargs=make_kwargs))


def test_a_missing_optional_dependency_names_the_pip_extra():
    gym.register("NeedsBox2D-v0", entry_point="tests.core.box2d_task:Lander")
    with pytest.raises(ConfigError, match=r'env.id: NeedsBox2D-v0 needs an optional dependency '
                                          r'.*pip install "gymnasium\[box2d\]"'):
        make_env(EnvConfig(id="NeedsBox2D-v0"))


def _needs_mujoco(**kwargs):
    raise ModuleNotFoundError("No module named 'mujoco'", name="mujoco")


def test_a_missing_package_at_construction_names_it():
    gym.register("NeedsMujoco-v0", entry_point=_needs_mujoco)
    with pytest.raises(ConfigError, match=r"env.id: NeedsMujoco-v0 needs the package 'mujoco'.*"
                                          r'pip install "gymnasium\[mujoco\]"'):
        make_env(EnvConfig(id="NeedsMujoco-v0"))


@pytest.mark.parametrize(("env_id", "overrides", "problem"), [
    ("CartPole-v1", {"reset": 1.0}, "env.overrides.reset: CartPoleEnv.reset is a method or "
                                    "property, not a data attribute"),
    ("CartPole-v1", {"np_random": 1.0}, "CartPoleEnv.np_random is a method or property"),
    ("CartPole-v1", {"_np_random": 1.0}, "CartPoleEnv has no attribute '_np_random'"),
    ("CartPole-v1", {"kinematics_integrator": 1.0}, "holds a str, not a number"),
    ("CartPole-v1", {"isopen": 0.0}, "holds a bool, not a number"),
    ("CartPole-v1", {"total_mass": 3.0}, "CartPoleEnv derives total_mass from other attributes"),
    ("CartPole-v1", {"screen_width": 600.5}, "got 600.5, expected an integer"),
    ("CartPole-v1", {"length": -1.0}, r"env.overrides.length: got -1.0, expected a number > 0 "
                                      r"\(the physical range of CartPoleEnv.length\)"),
    ("CartPole-v1", {"masspole": 0.0}, "masspole: got 0.0, expected a number > 0"),
    ("CartPole-v1", {"length": float("inf")}, "length: got inf, expected a finite number"),
    ("Acrobot-v1", {"LINK_LENGTH_2": 0.0}, "LINK_LENGTH_2: got 0.0, expected a number > 0"),
    ("Acrobot-v1", {"LINK_MASS_1": -2.0}, "LINK_MASS_1: got -2.0, expected a number > 0"),
    ("MountainCar-v0", {"force": -0.001}, "force: got -0.001, expected a number > 0"),
])
def test_overrides_only_set_numeric_data_attributes_within_physical_ranges(env_id, overrides,
                                                                           problem):
    with pytest.raises(ConfigError, match=problem):
        make_env(EnvConfig(id=env_id, overrides=overrides))


def test_a_class_level_attribute_can_be_overridden_on_the_instance():
    env = make_env(EnvConfig(id="Acrobot-v1", overrides={"LINK_MASS_1": 2.0}))
    assert env.unwrapped.LINK_MASS_1 == 2.0 and type(env.unwrapped).LINK_MASS_1 == 1.0


def _project(checkpoint_dir: str) -> ProjectConfig:
    return from_mapping(ProjectConfig, {"sources": {"cp": {"env": {"id": "CartPole-v1"}}},
                                        "runtime": {"checkpoint_dir": checkpoint_dir}})


@pytest.mark.parametrize(("where", "problem"), [
    ("file", "runtime.checkpoint_dir: .*checkpoints.txt is a file, expected a folder"),
    ("under a file", "runtime.checkpoint_dir: cannot create .*: .*checkpoints.txt is a file"),
    ("read-only", "runtime.checkpoint_dir: cannot write checkpoints to /proc/self/checkpoints"),
])
def test_an_unusable_checkpoint_folder_fails_before_any_work(tmp_path, where, problem):
    (tmp_path / "checkpoints.txt").write_text("not a folder")
    folder = {"file": tmp_path / "checkpoints.txt",
              "under a file": tmp_path / "checkpoints.txt" / "run",
              "read-only": "/proc/self/checkpoints"}[where]
    with pytest.raises(ConfigError, match=problem):
        check_environments(_project(str(folder)))


def test_a_writable_checkpoint_folder_passes_and_is_left_as_it_was(tmp_path):
    check_environments(_project(str(tmp_path / "data" / "09_checkpoints")))
    assert list(tmp_path.iterdir()) == [], "the check neither creates the folder nor litters"


# --- Trajectory tables against the env a node uses them with ----------------------------

def _mountaincar_table(goal: bool = False) -> pd.DataFrame:
    config = EnvConfig(id="MountainCar-v0",
                       goal=GoalConfig(achieved=(0,), desired=(0.5,)) if goal else None)
    transitions = collect_rollouts(config, 20, lambda obs: 2, seed=0)
    table = to_table(transitions, goal_dim=1 if goal else 0)
    table.attrs = {"env_id": "MountainCar-v0", "make_kwargs": {}, "overrides": {}}
    return table


MOUNTAINCAR = EnvConfig(id="MountainCar-v0")


def test_a_table_that_fits_its_env_passes():
    check_table_fits(_mountaincar_table(), MOUNTAINCAR, "mc.hindsight_dataset")
    goal_env = MOUNTAINCAR.model_copy(update={"goal": GoalConfig(achieved=(0,), desired=(0.5,))})
    check_table_fits(_mountaincar_table(goal=True), goal_env, "mc.hindsight_dataset")


@pytest.mark.parametrize(("damage", "env", "problem"), [
    (lambda t: t.assign(action=t["action"].where(t.index != 3, 3)), MOUNTAINCAR,
     r"action 3 at row 3 is outside MountainCar-v0's 3 actions \(0..2\)"),
    (lambda t: t, EnvConfig(id="CartPole-v1"),
     "was collected with env_id 'MountainCar-v0', but the node's env has 'CartPole-v1'"),
    (lambda t: t, MOUNTAINCAR.model_copy(update={"overrides": {"force": 0.002}}),
     r"was collected with overrides \{\}, but the node's env has \{'force': 0.002\}"),
    (lambda t: t.drop(columns=["obs_1", "next_obs_1"]), MOUNTAINCAR,
     "has 1 observation and 0 goal columns; MountainCar-v0 gives 2 and its config 0"),
    (lambda t: t, MOUNTAINCAR.model_copy(update={"goal": GoalConfig(achieved=(0,),
                                                                     desired=(0.5,))}),
     "has 2 observation and 0 goal columns; MountainCar-v0 gives 2 and its config 1"),
])
def test_a_table_from_another_task_fails_naming_it(damage, env, problem):
    original = _mountaincar_table()
    table = damage(original)
    table.attrs = original.attrs
    with pytest.raises(TrajectoryTableError, match=f"^mc.hindsight_dataset: {problem}"):
        check_table_fits(table, env, "mc.hindsight_dataset")


PENDULUM = EnvConfig(id="Pendulum-v1")


def _pendulum_table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    transitions = collect_rollouts(PENDULUM, 20, lambda obs: rng.uniform(-2, 2, 1), seed=0)
    table = to_table(transitions)
    table.attrs = {"env_id": "Pendulum-v1", "make_kwargs": {}, "overrides": {}}
    return table


def test_a_continuous_table_that_fits_its_env_passes():
    table = _pendulum_table()
    check_table_fits(table.assign(action_0=np.float32(2.0)), PENDULUM, "p.hindsight_dataset")
    check_table_fits(table.assign(action_0=np.float32(-2.0)), PENDULUM, "p.hindsight_dataset")


@pytest.mark.parametrize(("damage", "env", "problem"), [
    (lambda t: t.assign(action_0=t["action_0"].where(t.index != 4, np.float32(2.5))), PENDULUM,
     r"action_0 2.5 at row 4 is outside Pendulum-v1's bounds \[-2, 2\]"),
    (lambda t: t.assign(action_0=t["action_0"].where(t.index != 7, np.float32(-2.001))),
     PENDULUM, r"action_0 -2.001 at row 7 is outside Pendulum-v1's bounds \[-2, 2\]"),
    (lambda t: t.assign(action_1=np.float32(0.0)), PENDULUM,
     r"has 2 continuous action columns; Pendulum-v1 has 1-entry continuous actions "
     r"\(columns action_0\)$"),
    (lambda t: t.drop(columns="action_0").assign(action=np.int64(0)), PENDULUM,
     "has a discrete 'action' column; Pendulum-v1 has 1-entry continuous actions"),
    (lambda t: t.drop(columns=["obs_2", "next_obs_2"]).assign(action=np.int64(0))
     .drop(columns="action_0"), EnvConfig(id="MountainCar-v0"),
     "was collected with env_id 'Pendulum-v1'"),
])
def test_a_continuous_table_that_does_not_fit_fails_naming_why(damage, env, problem):
    original = _pendulum_table()
    table = damage(original)
    table.attrs = original.attrs
    with pytest.raises(TrajectoryTableError, match=f"^p.hindsight_dataset: {problem}"):
        check_table_fits(table, env, "p.hindsight_dataset")


def test_a_continuous_table_does_not_fit_a_discrete_env():
    table = _pendulum_table().drop(columns=["obs_2", "next_obs_2"])
    table.attrs = {}
    with pytest.raises(TrajectoryTableError, match=(
            "^p.hindsight_dataset: has 1 continuous action columns .*; MountainCar-v0 has 3 "
            r"discrete actions \(one 'action' column\)")):
        check_table_fits(table, EnvConfig(id="MountainCar-v0"), "p.hindsight_dataset")


def test_the_observation_setting_picks_a_dict_entry_hides_entries_and_declares_a_range():
    view = env_info(EnvConfig(id="MiniGrid-DoorKey-5x5-v0",
                              observation=ObservationConfig(key="image", high=10.0)))
    assert (view.obs_dim, view.image_shape, view.n_actions) == (147, (7, 7, 3), 7)
    assert view.obs_high.max() == 10.0 and view.obs_low.min() == 0.0
    novel = EnvConfig(id="CartPole-v1", observation=ObservationConfig(keep=(0, 2)))
    env = make_env(novel)
    full = make_env(EnvConfig(id="CartPole-v1"))
    obs, _ = env.reset(seed=3)
    every, _ = full.reset(seed=3)
    assert np.array_equal(obs, every[[0, 2]]), "the velocities are hidden"
    assert env_info(novel).obs_dim == 2


def test_position_appends_the_agents_cell_after_the_view_with_the_grids_bounds():
    config = EnvConfig(id="MiniGrid-DoorKey-8x8-v0",
                       observation=ObservationConfig(key="image", high=10.0, position=True),
                       goal=GoalConfig(achieved=(147, 148), desired=(6.0, 6.0),
                                       reached="within"))
    info = env_info(config)
    assert (info.obs_dim, info.image_shape) == (151, (7, 7, 3)), "view, cell, desired cell"
    assert info.obs_high[147:].tolist() == [7.0] * 4 and info.obs_low[147:].tolist() == [0.0] * 4
    assert info.obs_high[:147].max() == 10.0, "high is the view's range, not the cell's"
    env = make_env(config)
    obs, _ = env.reset(seed=2)
    for action in (2, 1, 2, 2):  # forward, turn right, forward twice: the cell follows
        assert obs[147:149].tolist() == list(env.unwrapped.agent_pos)
        assert obs[149:].tolist() == [6.0, 6.0]
        obs, *_ = env.step(action)


PIXELS = "tests.core.image_envs:PixelImage"


@pytest.mark.parametrize(("shape", "channels", "first"), [
    ((3, 4, 5), None, True), ((4, 5, 3), None, False),
    ((4, 4, 4), "first", True), ((2, 5, 2), "last", False)],
    ids=["smallest_first", "smallest_last", "said_first", "said_last"])
def test_an_image_reaches_the_network_channels_last_wherever_its_channels_are(shape, channels,
                                                                               first):
    config = EnvConfig(id="PixelImage-v0", entry_point=PIXELS, make_kwargs={"shape": shape},
                       observation=ObservationConfig(channels=channels))
    obs, _ = make_env(config).reset(seed=0)
    pixels = np.arange(math.prod(shape)).reshape(shape)
    rows = pixels.transpose(1, 2, 0) if first else pixels
    assert np.array_equal(obs, rows.reshape(-1))
    assert env_info(config).image_shape == rows.shape
    assert env_info(config).obs_high.tolist() == [255.0] * math.prod(shape)


def test_a_policy_file_replays_the_channels_its_network_read():
    config = EnvConfig(id="PixelImage-v0", entry_point=PIXELS, make_kwargs={"shape": [4, 4, 4]},
                       observation=ObservationConfig(channels="first"))
    info = env_info(config)
    network = QNetwork(info.obs_dim, 2, NetworkConfig(
        hidden_sizes=(4, 4), encoder="cnn", conv=ConvConfig(channels=(2,), kernels=(2,),
                                                          strides=(1,))),
        image_shape=info.image_shape)
    document = read_document(policy_to_bytes(Policy(network=network, env=config, gamma=0.9)))
    replayed = env_config_of(document, PIXELS)
    assert replayed.observation.channels == "first"
    assert np.array_equal(make_env(replayed).reset(seed=0)[0], make_env(config).reset(seed=0)[0])


@pytest.mark.parametrize(("env", "problem"), [
    ({"id": "CartPole-v1", "observation": {"position": True}},
     "position: CartPole-v1 keeps no agent_pos"),
    ({"id": "MiniGrid-DoorKey-5x5-v0"}, "observation is a dict of \\['direction', 'image', "
                                        "'mission'\\]; name the entry"),
    ({"id": "MiniGrid-DoorKey-5x5-v0", "observation": {"key": "view"}},
     "got 'view', expected one of"),
    ({"id": "CartPole-v1", "observation": {"key": "image"}}, "observation is not a dict"),
    ({"id": "CartPole-v1", "observation": {"keep": [0, 4]}}, "index 4 is outside"),
    ({"id": "CartPole-v1", "observation": {"keep": []}}, "one or more distinct indices"),
    ({"id": "CartPole-v1", "observation": {"low": 1.0, "high": 0.0}},
     "expected a number above low"),
    ({"id": "CartPole-v1", "observation": {"channels": "first"}},
     "channels: CartPole-v1's observation has shape \\(4,\\), not an image"),
    ({"id": "PixelImage-v0", "entry_point": PIXELS, "make_kwargs": {"shape": [4, 3, 4]}},
     "channels: PixelImage-v0's image is 4 × 3 × 4 and no axis is clearly its channels"),
    ({"id": "CartPole-v1", "observation": {"channels": "middle"}},
     "channels: got 'middle'")])
def test_a_wrong_observation_setting_names_the_problem(env, problem):
    with pytest.raises(ConfigError, match=problem):
        env_info(from_mapping(EnvConfig, env, "env"))


@pytest.mark.parametrize(("source", "problem"), [
    ({"env": {"id": "CartPole-v1"}, "network": {"encoder": "cnn"}},
     "network.encoder: got 'cnn', but CartPole-v1's observation is a 4-entry vector"),
    ({"env": {"id": "MiniGrid-DoorKey-5x5-v0", "observation": {"key": "image"}},
      "network": {"encoder": "cnn", "conv": {"channels": [4], "kernels": [8],
                                             "strides": [1]}}},
     "network.conv: a 7×7 image is too small for kernels \\[8\\]")])
def test_a_cnn_encoder_must_fit_the_observation_before_any_work(source, problem):
    project = from_mapping(ProjectConfig, {"sources": {"s": source}})
    with pytest.raises(ConfigError, match=f"sources.s.{problem}"):
        check_environments(project)


def test_a_targets_own_encoder_must_fit_its_observation_before_any_work():
    project = from_mapping(ProjectConfig, {
        "sources": {"s": {"env": {"id": "CartPole-v1"}}},
        "targets": {"t": {"env": {"id": "CartPole-v1"}, "encoder": "cnn"}}})
    with pytest.raises(ConfigError, match="targets.t.encoder: got 'cnn', but CartPole-v1's "
                                          "observation is a 4-entry vector"):
        check_environments(project)
