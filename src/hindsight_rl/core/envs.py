"""Building Gymnasium environments from config, with attribute overrides that take effect,
and every setting checked before any work: ids, ``make_kwargs`` (known keywords, the time
limit a reward threshold belongs to), optional dependencies, overrides (data attributes of
the right type, within physical ranges) and the checkpoint folder."""

from __future__ import annotations

import difflib
import importlib
import inspect
import math
import numbers
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from gymnasium.envs.classic_control.acrobot import AcrobotEnv
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from gymnasium.envs.classic_control.continuous_mountain_car import Continuous_MountainCarEnv
from gymnasium.envs.classic_control.mountain_car import MountainCarEnv
from gymnasium.envs.classic_control.pendulum import PendulumEnv
from gymnasium.envs.registration import EnvSpec, load_env_creator

from hindsight_rl.core.config import (
    ConfigError,
    EnvConfig,
    GoalConfig,
    NetworkConfig,
    ObservationConfig,
    ProjectConfig,
    RuntimeConfig,
    SourceConfig,
)
from hindsight_rl.core.errors import HindsightRLError
from hindsight_rl.core.networks import conv_output_shape
from hindsight_rl.core.trajectories import TrajectoryTableError, action_width


def _recompute_cartpole(env: CartPoleEnv) -> None:
    """CartPole caches these in ``__init__``; without this a ``length`` override does nothing."""
    env.total_mass = env.masspole + env.masscart
    env.polemass_length = env.masspole * env.length


# Attributes some environments derive once in ``__init__`` from the ones users override.
_DERIVED_ATTRIBUTES: dict[type, Callable[[gym.Env], None]] = {CartPoleEnv: _recompute_cartpole}
_DERIVED_NAMES: dict[type, tuple[str, ...]] = {CartPoleEnv: ("total_mass", "polemass_length")}


@dataclass(frozen=True)
class Range:
    """Where an override keeps the physics meaningful: ``low < value`` (``low <= value``
    when ``closed``) and ``value <= high``."""

    low: float
    high: float = math.inf
    closed: bool = False

    def __contains__(self, value: float) -> bool:
        above = value >= self.low if self.closed else value > self.low
        return above and value <= self.high

    def __str__(self) -> str:
        low = f"{'>=' if self.closed else '>'} {self.low:g}"
        return low if self.high == math.inf else f"{low} and <= {self.high:g}"


_POSITIVE, _NON_NEGATIVE = Range(0.0), Range(0.0, closed=True)
PHYSICAL_RANGES: dict[type, dict[str, Range]] = {
    CartPoleEnv: {"gravity": _POSITIVE, "masscart": _POSITIVE, "masspole": _POSITIVE,
                  "length": _POSITIVE, "force_mag": _POSITIVE, "tau": _POSITIVE,
                  "theta_threshold_radians": Range(0.0, math.pi / 2),
                  "x_threshold": _POSITIVE},
    AcrobotEnv: {"LINK_LENGTH_1": _POSITIVE, "LINK_LENGTH_2": _POSITIVE,
                 "LINK_MASS_1": _POSITIVE, "LINK_MASS_2": _POSITIVE,
                 "LINK_COM_POS_1": _NON_NEGATIVE, "LINK_COM_POS_2": _NON_NEGATIVE,
                 "LINK_MOI": _POSITIVE, "MAX_VEL_1": _POSITIVE, "MAX_VEL_2": _POSITIVE,
                 "dt": _POSITIVE, "torque_noise_max": _NON_NEGATIVE},
    MountainCarEnv: {"force": _POSITIVE, "gravity": _POSITIVE, "max_speed": _POSITIVE},
    Continuous_MountainCarEnv: {"power": _POSITIVE, "max_speed": _POSITIVE},
    PendulumEnv: {"m": _POSITIVE, "l": _POSITIVE, "g": _POSITIVE, "max_torque": _POSITIVE,
                  "max_speed": _POSITIVE, "dt": _POSITIVE},
}
"""Known physical ranges of the classic-control tasks' attributes: a zero or negative length
or mass gives a task that is not the one named (or NaN observations), never an error."""

_MAKE_OWN_KEYWORDS = ("max_episode_steps", "disable_env_checker")
"""Keywords ``gymnasium.make`` takes itself; every other one goes to the env's constructor."""
_PACKAGE_EXTRAS = {"Box2D": "gymnasium[box2d]", "mujoco": "gymnasium[mujoco]",
                   "ale_py": "gymnasium[atari]", "pygame": "gymnasium[classic-control]"}
REGISTERING_PACKAGES = {"MiniGrid-": "minigrid", "BabyAI-": "minigrid"}
"""Packages that register their environments with Gymnasium when imported, by the prefix of
the ids they register: a known list, so that configuration never names code to import."""


@dataclass(frozen=True)
class EnvInfo:
    """What the network and the evaluation need to know about an environment.

    A task has either ``n_actions`` discrete actions (``action_low``/``action_high`` None)
    or continuous actions, a float vector inside ``[action_low, action_high]``
    (``n_actions`` None)."""

    obs_dim: int
    n_actions: int | None
    obs_low: np.ndarray
    obs_high: np.ndarray
    reward_threshold: float | None
    max_episode_steps: int | None
    action_low: np.ndarray | None = None
    action_high: np.ndarray | None = None
    image_shape: tuple[int, int, int] | None = None
    """Height, width and channels of an image observation (rows of ``obs_dim`` entries are
    its pixels in that order); None for a vector observation."""

    @property
    def continuous(self) -> bool:
        """Whether actions are vectors in a Box (SAC) rather than indices (DQN)."""
        return self.action_low is not None

    @property
    def action_dim(self) -> int:
        """Entries of a continuous action (0 for a discrete task, whose action is one int)."""
        return 0 if self.action_low is None else int(self.action_low.shape[0])


class GoalObservation(gym.ObservationWrapper):
    """Appends the desired goal to every observation: what a goal-conditioned network sees.

    The goal entries get the bounds of the observation entries they are compared with, so
    the network normalises both the same way.
    """

    def __init__(self, env: gym.Env, goal: GoalConfig) -> None:
        super().__init__(env)
        space = env.observation_space
        if max(goal.achieved) >= space.shape[0]:
            raise ConfigError(f"env.goal.achieved: index {max(goal.achieved)} is outside the "
                              f"{space.shape[0]}-entry observation")
        self.desired = np.asarray(goal.desired, np.float32)
        index = list(goal.achieved)
        self.observation_space = gym.spaces.Box(
            np.concatenate([space.low, space.low[index]]).astype(np.float32),
            np.concatenate([space.high, space.high[index]]).astype(np.float32),
            dtype=np.float32)
        self.image_shape = getattr(env, "image_shape", None)
        """An image's shape passes through: the goal's entries follow its pixels."""

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.concatenate([observation, self.desired]).astype(np.float32)


class SelectedObservation(gym.ObservationWrapper):
    """What the network sees (``env.observation``): a dict observation's entry, a flat
    observation's chosen entries, declared bounds; an image flattened to a row of pixels
    (height, width, channels; a channels-first image transposed first), its shape kept in
    ``image_shape`` for a ``cnn`` encoder."""

    def __init__(self, env: gym.Env, config: ObservationConfig | None, env_id: str) -> None:
        super().__init__(env)
        space = env.observation_space
        if isinstance(space, gym.spaces.Dict):
            space = _dict_entry(space, config, env_id)
        elif config is not None and config.key is not None:
            raise ConfigError(f"env.observation.key: {env_id}'s observation is not a dict")
        if not isinstance(space, gym.spaces.Box) or len(space.shape) not in (1, 3):
            raise ConfigError(f"env.id: {env_id} has observation space {space}; supported: "
                              "a flat Box (1-d), an image Box (3-d, channels first or last), "
                              "or a Dict with env.observation.key naming one of those")
        self.key = None if config is None else config.key
        self.image_shape, self.channels_first = _image_layout(space.shape, config, env_id)
        low, high = (self._row(np.asarray(bound, np.float64))
                     for bound in (space.low, space.high))
        self.keep = None
        if config is not None and config.keep is not None:
            if max(config.keep) >= low.size:
                raise ConfigError(f"env.observation.keep: index {max(config.keep)} is outside "
                                  f"{env_id}'s {low.size}-entry observation")
            if self.image_shape is not None:
                raise ConfigError("env.observation.keep: an image observation keeps every "
                                  "pixel; keep is for flat observations")
            self.keep = np.asarray(config.keep)
            low, high = low[self.keep], high[self.keep]
        if config is not None and config.low is not None:
            low = np.full_like(low, config.low)
        if config is not None and config.high is not None:
            high = np.full_like(high, config.high)
        self.position = config is not None and config.position
        if self.position:
            cells = _grid_size(env.unwrapped, env_id)
            low, high = np.concatenate([low, [0, 0]]), np.concatenate([high, cells - 1])
        self.observation_space = gym.spaces.Box(low.astype(np.float32),
                                                high.astype(np.float32), dtype=np.float32)

    def observation(self, observation: Any) -> np.ndarray:
        if self.key is not None:
            observation = observation[self.key]
        row = self._row(np.asarray(observation, np.float32))
        row = row if self.keep is None else row[self.keep]
        if self.position:
            row = np.concatenate([row, np.asarray(self.env.unwrapped.agent_pos, np.float32)])
        return row

    def _row(self, values: np.ndarray) -> np.ndarray:
        """An observation (or a bound) as the flat row the network reads: an image's pixels
        in height, width, channels order."""
        return (values.transpose(1, 2, 0) if self.channels_first else values).reshape(-1)


def _image_layout(shape: tuple[int, ...], config: ObservationConfig | None, env_id: str
                  ) -> tuple[tuple[int, int, int] | None, bool]:
    """An observation's image shape (height, width, channels; None if it is not an image)
    and whether its channels come first: as ``env.observation.channels`` says, else its
    smallest axis, first or last, as SB3 infers it; a clear error when that is ambiguous."""
    channels = None if config is None else config.channels
    if len(shape) != 3:
        if channels is not None:
            raise ConfigError(f"env.observation.channels: {env_id}'s observation has shape "
                              f"{shape}, not an image")
        return None, False
    if channels is None:
        channels = _smallest_axis(shape, env_id)
    if channels == "first":
        return (int(shape[1]), int(shape[2]), int(shape[0])), True
    return (int(shape[0]), int(shape[1]), int(shape[2])), False


def _smallest_axis(shape: tuple[int, ...], env_id: str) -> str:
    """``last`` or ``first``: the axis of an image that is smaller than the other two."""
    if shape[2] < min(shape[0], shape[1]):
        return "last"
    if shape[0] < min(shape[1], shape[2]):
        return "first"
    raise ConfigError(f"env.observation.channels: {env_id}'s image is "
                      f"{' × '.join(map(str, shape))} and no axis is clearly its channels "
                      "(the smallest); set channels: last (height × width × channels) or "
                      "first (channels × height × width)")


def _grid_size(base: gym.Env, env_id: str) -> np.ndarray:
    """Columns and rows of the grid an env's ``agent_pos`` lies in (MiniGrid's width and
    height); a clear error for an env that keeps no such position."""
    if not all(hasattr(base, name) for name in ("agent_pos", "width", "height")):
        raise ConfigError(f"env.observation.position: {env_id} keeps no agent_pos on a "
                          "width × height grid (MiniGrid's environments do)")
    return np.asarray([base.width, base.height], np.float64)


def _dict_entry(space: gym.spaces.Dict, config: ObservationConfig | None,
                env_id: str) -> gym.Space:
    keys = sorted(space.spaces)
    if config is None or config.key is None:
        raise ConfigError(f"env.observation.key: {env_id}'s observation is a dict of {keys}; "
                          "name the entry the network sees")
    if config.key not in space.spaces:
        raise ConfigError(f"env.observation.key: got {config.key!r}, expected one of {keys}")
    return space.spaces[config.key]


def without_goal(config: EnvConfig) -> EnvConfig:
    """The plain environment: observations as the task gives them (how a policy file is
    played: it appends its own normalised goal)."""
    return config.model_copy(update={"goal": None})


def make_env(config: EnvConfig) -> gym.Env:
    """``gymnasium.make`` plus the configured overrides, with clear errors for bad ids; the
    desired goal appended to observations when the task declares one.

    Only ``config.entry_point`` (the project's configuration, or a flag the user typed)
    registers code (``EnvConfig`` refuses ids with a ``module:`` prefix, which
    ``gymnasium.make`` would import)."""
    if config.entry_point and config.id not in gym.registry:
        _register(config)
    if config.id not in gym.registry:
        _import_registering_package(config.id)
    if config.id not in gym.registry:
        close = difflib.get_close_matches(config.id, list(gym.registry), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"env.id: unknown Gymnasium environment {config.id!r}.{hint}")
    spec = gym.registry[config.id]
    check_make_kwargs(spec, config.make_kwargs)
    env = _construct(config)
    apply_overrides(env, config.overrides)
    if config.observation is not None or not _is_flat_box(env.observation_space):
        env = SelectedObservation(env, config.observation, config.id)
    _check_spaces(env, config.id)
    return env if config.goal is None else GoalObservation(env, config.goal)


def _is_flat_box(space: gym.Space) -> bool:
    return isinstance(space, gym.spaces.Box) and len(space.shape) == 1


def _import_registering_package(env_id: str) -> None:
    """Import the package that registers ``env_id`` (by its prefix), if it is a known one."""
    for prefix, package in REGISTERING_PACKAGES.items():
        if env_id.startswith(prefix):
            try:
                importlib.import_module(package)
            except ImportError:
                raise ConfigError(f"env.id: {env_id} needs the {package} package (a "
                                  f"dependency of hindsight-rl): pip install {package}") from None


def _construct(config: EnvConfig) -> gym.Env:
    """``gymnasium.make``, with what can still go wrong there (a missing optional
    dependency, a value the constructor refuses) as one :class:`ConfigError`."""
    try:
        return gym.make(config.id, **config.make_kwargs)
    except (gym.error.DependencyNotInstalled, ImportError) as error:
        raise _missing_dependency(config.id, error) from None
    except (gym.error.Error, TypeError, ValueError, AssertionError) as error:
        raise ConfigError(f"env: building {config.id} with make_kwargs "
                          f"{dict(config.make_kwargs)} failed: {error}") from None


def _missing_dependency(env_id: str, error: Exception) -> ConfigError:
    """Which package (and pip extra) the environment needs."""
    if isinstance(error, gym.error.DependencyNotInstalled):
        return ConfigError(f"env.id: {env_id} needs an optional dependency that is not "
                           f"installed: {error}")
    package = getattr(error, "name", None) or str(error)
    top = package.split(".")[0]
    extra = _PACKAGE_EXTRAS.get(top)
    install = f'pip install "{extra}"' if extra else f"pip install {top}"
    return ConfigError(f"env.id: {env_id} needs the package {top!r}, which is not installed "
                       f"({error}); install it with: {install}")


def check_make_kwargs(spec: EnvSpec, make_kwargs: Mapping[str, Any]) -> None:
    """Keywords the environment takes, values of the types its constructor's defaults have,
    a ``render_mode`` it offers, and no other time limit than the one its reward threshold
    was set for."""
    if "max_episode_steps" in make_kwargs:
        _check_time_limit(spec, make_kwargs["max_episode_steps"])
    try:
        creator = load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) \
            else spec.entry_point
    except (gym.error.DependencyNotInstalled, ImportError) as error:
        raise _missing_dependency(spec.id, error) from None
    parameters = _constructor_parameters(creator)
    if parameters is None:  # takes **kwargs: the constructor itself is the judge
        return
    known = [*_MAKE_OWN_KEYWORDS, *parameters]
    for key, value in make_kwargs.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"env.make_kwargs.{key}: {spec.id} takes no keyword {key!r}"
                              f"{hint} Known: {', '.join(known)}")
        if key in parameters:
            _check_like_default(spec.id, key, value, parameters[key], creator)


def _check_time_limit(spec: EnvSpec, steps: Any) -> None:
    """A reward threshold is a return over the env's own time limit: MountainCar's −110 is
    met by every policy when episodes end after 5 steps. So the time limit of an env with a
    threshold is not a setting; a task with another limit needs a threshold of its own."""
    if type(steps) is not int or steps < 1:
        raise ConfigError(f"env.make_kwargs.max_episode_steps: got {steps!r}, expected an "
                          "integer >= 1")
    if spec.reward_threshold is not None and steps != spec.max_episode_steps:
        raise ConfigError(
            f"env.make_kwargs.max_episode_steps: got {steps}, but {spec.id}'s reward "
            f"threshold ({spec.reward_threshold:g}) holds for its own time limit "
            f"({spec.max_episode_steps} steps) only; with another limit every "
            "steps-to-threshold and 'solved' would be wrong. Remove it, or declare a task "
            "of your own: env.entry_point with its max_episode_steps and reward_threshold")


def _constructor_parameters(creator: Any) -> dict[str, inspect.Parameter] | None:
    """The constructor's keyword parameters, or ``None`` when it takes ``**kwargs`` (or has
    no signature Python can read)."""
    try:
        signature = inspect.signature(creator)
    except (TypeError, ValueError):
        return None
    parameters = dict(signature.parameters)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    return {name: p for name, p in parameters.items()
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                          inspect.Parameter.KEYWORD_ONLY)}


def _check_like_default(env_id: str, key: str, value: Any, parameter: inspect.Parameter,
                        creator: Any) -> None:
    """A value of the kind the constructor's default is (true/false, a number, text);
    ``render_mode`` one the env offers."""
    key_path = f"env.make_kwargs.{key}"
    if key == "render_mode":
        modes = getattr(creator, "metadata", {}).get("render_modes", [])
        if value is not None and value not in modes:
            raise ConfigError(f"{key_path}: got {value!r}, expected null or one of {modes}")
        return
    default = parameter.default
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{key_path}: got {value!r}, expected true or false")
    elif isinstance(default, numbers.Real):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                or not math.isfinite(value):
            raise ConfigError(f"{key_path}: got {value!r}, expected a finite number (the "
                              f"default of {env_id} is {default!r})")
    elif isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"{key_path}: got {value!r}, expected a string")


def _register(config: EnvConfig) -> None:
    """Register a custom environment from its ``module:Class`` entry point, checking first
    that it imports (Gymnasium would only fail later, inside ``make``)."""
    module, _, name = (config.entry_point or "").partition(":")
    try:
        getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ConfigError(f"env.entry_point: cannot import {config.entry_point!r} ({error}); "
                          "expected 'package.module:EnvClass'") from None
    gym.register(config.id, entry_point=config.entry_point,
                 max_episode_steps=config.max_episode_steps,
                 reward_threshold=config.reward_threshold)


def apply_overrides(env: gym.Env, overrides: dict[str, float]) -> None:
    """Set attributes on ``env.unwrapped`` and refresh the values derived from them; only
    numeric data attributes, with values of their type and in their physical range."""
    base = env.unwrapped
    for name, value in overrides.items():
        setattr(base, name, checked_override(base, name, value))
    for cls, recompute in _DERIVED_ATTRIBUTES.items():
        if isinstance(base, cls):
            recompute(base)


def checked_override(base: gym.Env, name: str, value: float) -> float | int:
    """The value to set for ``env.overrides.<name>``, or a :class:`ConfigError` saying why
    it cannot be: a missing attribute, a method or property (setting one would replace code
    or be ignored), a non-numeric or derived attribute, a non-finite or out-of-range value,
    a fraction for an integer attribute."""
    cls, key_path = type(base).__name__, f"env.overrides.{name}"
    if name.startswith("_") or not hasattr(base, name):
        raise ConfigError(f"{key_path}: {cls} has no attribute {name!r}")
    static = inspect.getattr_static(base, name)
    current = getattr(base, name)
    if isinstance(static, property | classmethod | staticmethod) or callable(current) \
            or (hasattr(type(static), "__get__") and not isinstance(static, numbers.Real)):
        raise ConfigError(f"{key_path}: {cls}.{name} is a method or property, not a data "
                          "attribute; only numeric data attributes can be overridden")
    derived = [n for c, names in _DERIVED_NAMES.items() if isinstance(base, c) for n in names]
    if name in derived:
        raise ConfigError(f"{key_path}: {cls} derives {name} from other attributes; override "
                          "those instead")
    if isinstance(current, bool | np.bool_) or not isinstance(current, numbers.Real):
        raise ConfigError(f"{key_path}: {cls}.{name} holds a {type(current).__name__}, not "
                          "a number; only numeric attributes can be overridden")
    if not math.isfinite(value):
        raise ConfigError(f"{key_path}: got {value!r}, expected a finite number")
    if isinstance(current, numbers.Integral):
        if value != int(value):
            raise ConfigError(f"{key_path}: got {value!r}, expected an integer ({cls}.{name} "
                              f"is {current!r})")
        value = int(value)
    allowed = next((ranges[name] for c, ranges in PHYSICAL_RANGES.items()
                    if isinstance(base, c) and name in ranges), None)
    if allowed is not None and value not in allowed:
        raise ConfigError(f"{key_path}: got {value!r}, expected a number {allowed} "
                          f"(the physical range of {cls}.{name})")
    return value


def _check_spaces(env: gym.Env, env_id: str) -> None:
    """Flat Box observations; Discrete actions (DQN) or a 1-d Box with finite bounds
    (SAC: its squashed actor maps onto the bounds, so an unbounded axis has no scale)."""
    obs_space, act_space = env.observation_space, env.action_space
    if not _is_flat_box(obs_space):
        raise ConfigError(f"env.id: {env_id} has observation space {obs_space}; "
                          "supported: a flat Box (1-d)")
    if isinstance(act_space, gym.spaces.Discrete) or is_bounded_box(act_space):
        return
    raise ConfigError(f"env.id: {env_id} has action space {act_space}; supported: Discrete, "
                      "or a 1-d Box with finite bounds")


def is_bounded_box(space: gym.Space) -> bool:
    """A 1-d ``Box`` whose every bound is finite: the continuous actions the project takes."""
    return (isinstance(space, gym.spaces.Box) and len(space.shape) == 1
            and bool(np.isfinite(space.low).all() and np.isfinite(space.high).all()))


def env_info(config: EnvConfig) -> EnvInfo:
    """Spaces, reward threshold and time limit of the configured environment."""
    env = make_env(config)
    try:
        spec, space = env.spec, env.action_space
        continuous = isinstance(space, gym.spaces.Box)
        return EnvInfo(
            obs_dim=int(env.observation_space.shape[0]),
            n_actions=None if continuous else int(space.n),
            obs_low=np.asarray(env.observation_space.low, dtype=np.float32),
            obs_high=np.asarray(env.observation_space.high, dtype=np.float32),
            reward_threshold=_reward_threshold(config, spec),
            max_episode_steps=None if spec is None else spec.max_episode_steps,
            action_low=np.asarray(space.low, np.float32) if continuous else None,
            action_high=np.asarray(space.high, np.float32) if continuous else None,
            image_shape=getattr(env, "image_shape", None),
        )
    finally:
        env.close()


def _reward_threshold(config: EnvConfig, spec: EnvSpec | None) -> float | None:
    """The env's registered threshold; for one registered without (Pendulum), the one its
    config declares, so that steps-to-threshold can be measured on it."""
    registered = None if spec is None else spec.reward_threshold
    return config.reward_threshold if registered is None else registered


def registered_time_limit(config: EnvConfig) -> int | None:
    """The time limit the environment is registered with, whatever ``make_kwargs`` say."""
    make_env(config).close()  # registers a custom environment first
    return gym.spec(config.id).max_episode_steps


def check_environments(project: ProjectConfig) -> None:
    """Build every configured environment once, so a bad id, keyword, dependency, space or
    override fails before any training starts, and check that the checkpoint folder can be
    written; errors carry the full key path."""
    for path, run in project.all_runs().items():
        _check_registration_settings(run.env, path)
        try:
            info = env_info(run.env)
        except ConfigError as error:
            raise ConfigError(f"{path}.{error}") from None
        _check_algorithm_fits(run.algorithm, info, run.env.id, path)
        if isinstance(run, SourceConfig):  # a target takes its source's network...
            _check_encoder_fits(run.network, run.algorithm, info, run.env.id, path)
        elif run.encoder is not None:  # ...with an encoder type of its own, if it says so
            _check_encoder_fits(NetworkConfig(encoder=run.encoder), run.algorithm, info,
                                run.env.id, path, key="encoder")
        if run.training.stop_on_threshold and info.reward_threshold is None:
            raise ConfigError(f"{path}.{run.algorithm}.stop_on_threshold: {run.env.id} has no "
                              "reward threshold; set env.reward_threshold or turn it off")
    check_checkpoint_dir(project.runtime)


def _check_algorithm_fits(algorithm: str, info: EnvInfo, env_id: str, path: str) -> None:
    """DQN scores each of a Discrete space's actions; SAC's actor outputs a vector in a
    Box: the other pairings cannot run."""
    if algorithm == "dqn" and info.continuous:
        raise ConfigError(f"{path}.algorithm: got 'dqn', but {env_id} has continuous actions; "
                          "expected 'sac'")
    if algorithm == "sac" and not info.continuous:
        raise ConfigError(f"{path}.algorithm: got 'sac', but {env_id} has Discrete actions; "
                          "expected 'dqn'")


def _check_encoder_fits(network: NetworkConfig, algorithm: str, info: EnvInfo, env_id: str,
                        path: str, key: str = "network.encoder") -> None:
    """A ``cnn`` encoder reads an image observation through convolutions that fit inside
    it, for DQN (SAC's actor and critic read vectors); ``key`` names the setting."""
    if network.encoder != "cnn":
        return
    if info.image_shape is None:
        raise ConfigError(f"{path}.{key}: got 'cnn', but {env_id}'s observation is "
                          f"a {info.obs_dim}-entry vector; expected 'mlp' or 'gru'")
    if algorithm != "dqn":
        raise ConfigError(f"{path}.{key}: 'cnn' trains with DQN; SAC's actor and "
                          "critic take 'mlp' encoders")
    try:
        conv_output_shape(info.image_shape, network.conv)
    except HindsightRLError as error:
        raise ConfigError(f"{path}.{error}") from None


def _check_registration_settings(config: EnvConfig, path: str) -> None:
    """``max_episode_steps`` and ``reward_threshold`` register an ``entry_point`` env; on
    an env Gymnasium already knows they would change nothing, silently. The one exception:
    a ``reward_threshold`` for a registered env that has none (Pendulum-v1), which
    :func:`env_info` reports, since nothing else would say when such a task is solved."""
    if config.entry_point is not None:
        return
    if config.max_episode_steps is not None:
        raise ConfigError(
            f"{path}.env.max_episode_steps: set only with env.entry_point (it registers a "
            f"custom environment); {config.id}'s own time limit applies (another: "
            "env.make_kwargs.max_episode_steps, on an env without a reward threshold)")
    spec = gym.registry.get(config.id)
    if config.reward_threshold is not None and spec is not None \
            and spec.reward_threshold is not None:
        raise ConfigError(
            f"{path}.env.reward_threshold: {config.id} has its own reward threshold "
            f"({spec.reward_threshold:g}), which applies; set one only on an env registered "
            "without a threshold, or with env.entry_point (it registers a custom environment)")


def check_checkpoint_dir(runtime: RuntimeConfig) -> None:
    """``runtime.checkpoint_dir`` is a folder this process can write (or can create): found
    out by writing and removing a hidden probe file, since permission bits say nothing for
    root or on network filesystems. Otherwise the first checkpoint, minutes into training,
    would fail."""
    if runtime.checkpoint_dir is None:
        return
    folder = Path(runtime.checkpoint_dir)
    key_path = "runtime.checkpoint_dir"
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{key_path}: {folder} is a file, expected a folder (or null to turn "
                          "checkpoints off)")
    existing = next(p for p in (folder, *folder.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"{key_path}: cannot create {folder}: {existing} is a file")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".hindsight-rl-probe-"):
            pass
    except OSError as error:
        where = "" if existing == folder else f" (nor create it in {existing})"
        raise ConfigError(f"{key_path}: cannot write checkpoints to {folder}{where}: "
                          f"{error.strerror or error}; set a writable folder or null") from None


def check_table_fits(table: pd.DataFrame, config: EnvConfig, source: str) -> None:
    """A trajectory table (already valid on its own) fits the environment a node will use it
    with: observation and goal widths, actions inside the action space, and, where the table
    records them, the same env id, ``make_kwargs`` and overrides. Otherwise fine-tuning would
    train on another task's transitions (or index past the Q-values)."""
    def fail(problem: str) -> None:
        raise TrajectoryTableError(f"{source}: {problem}")

    info = env_info(without_goal(config))
    recorded = {key: table.attrs.get(key) for key in ("env_id", "make_kwargs", "overrides")}
    expected = {"env_id": config.id, "make_kwargs": dict(config.make_kwargs),
                "overrides": dict(config.overrides)}
    for key, value in recorded.items():
        if value is not None and value != expected[key]:
            fail(f"was collected with {key} {value!r}, but the node's env has "
                 f"{expected[key]!r}; collect it again or load a version that matches")
    widths = {prefix: sum(1 for c in table.columns if c.startswith(f"{prefix}_")
                          and c[len(prefix) + 1:].isdigit()) for prefix in ("obs", "goal")}
    if widths["obs"] != info.obs_dim or widths["goal"] != config.goal_width:
        fail(f"has {widths['obs']} observation and {widths['goal']} goal columns; "
             f"{config.id} gives {info.obs_dim} and its config {config.goal_width}")
    if info.continuous:
        _check_continuous_actions(table, info, config.id, fail)
    else:
        _check_discrete_actions(table, info, config.id, fail)


def _check_discrete_actions(table: pd.DataFrame, info: EnvInfo, env_id: str,
                            fail: Callable[[str], None]) -> None:
    """One ``action`` column of indices into the env's actions (the Q-values' columns)."""
    if "action" not in table.columns:
        fail(f"has {action_width(table)} continuous action columns (action_0..); {env_id} "
             f"has {info.n_actions} discrete actions (one 'action' column)")
    actions = table["action"].to_numpy()
    outside = np.flatnonzero((actions < 0) | (actions >= info.n_actions))
    if len(outside):
        row = int(outside[0])
        fail(f"action {actions[row]} at row {row} is outside {env_id}'s "
             f"{info.n_actions} actions (0..{info.n_actions - 1})")


def _check_continuous_actions(table: pd.DataFrame, info: EnvInfo, env_id: str,
                              fail: Callable[[str], None]) -> None:
    """``action_0..action_{d-1}`` inside the env's bounds: an action the env would clip
    is not the one that produced the stored transition."""
    width = action_width(table)
    if width != info.action_dim:
        have = ("a discrete 'action' column" if width == 0
                else f"{width} continuous action columns")
        columns = "action_0" + (f"..action_{info.action_dim - 1}" if info.action_dim > 1
                                else "")
        fail(f"has {have}; {env_id} has {info.action_dim}-entry continuous actions "
             f"(columns {columns})")
    actions = table[[f"action_{i}" for i in range(width)]].to_numpy(np.float32)
    outside = (actions < info.action_low) | (actions > info.action_high)
    if outside.any():
        row, entry = (int(i) for i in np.argwhere(outside)[0])
        fail(f"action_{entry} {actions[row, entry]:g} at row {row} is outside {env_id}'s "
             f"bounds [{info.action_low[entry]:g}, {info.action_high[entry]:g}]")
