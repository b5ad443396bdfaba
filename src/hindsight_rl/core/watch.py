"""Watching a policy: one greedy episode as frames (for a GIF) or in a window.

Rendering needs the env's renderer: the classic-control tasks draw with pygame (the
``watch`` extra); without it the error names the extra to install.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np
from PIL import Image

from hindsight_rl.core.artefacts import write_atomically
from hindsight_rl.core.config import EnvConfig
from hindsight_rl.core.envs import make_env
from hindsight_rl.core.errors import HindsightRLError
from hindsight_rl.core.rollouts import QFunction

WATCH_EXTRA = 'pip install -e ".[watch]"'


def _rendering(env_config: EnvConfig, render_mode: str) -> EnvConfig:
    return env_config.model_copy(
        update={"make_kwargs": {**env_config.make_kwargs, "render_mode": render_mode}})


def _greedy_episode(env: gym.Env, q_values: QFunction, seed: int,
                    on_step: Callable[[], object] = lambda: None) -> float:
    """Play one greedy episode from ``seed``, calling ``on_step`` after the reset and every
    step; its undiscounted return."""
    obs, _ = env.reset(seed=seed)
    on_step()
    total, done = 0.0, False
    while not done:
        action = int(q_values(obs[None].astype(np.float32)).argmax(axis=1)[0])
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        done = terminated or truncated
        on_step()
    return total


def episode_frames(env_config: EnvConfig, q_values: QFunction,
                   seed: int) -> tuple[list[np.ndarray], float]:
    """The RGB frames of one greedy episode from ``seed`` (the first after the reset, then
    one per step) and its return."""
    env = make_env(_rendering(env_config, "rgb_array"))
    frames: list[np.ndarray] = []
    try:
        episode_return = _greedy_episode(env, q_values, seed,
                                         lambda: frames.append(env.render()))
    except gym.error.DependencyNotInstalled as error:
        raise HindsightRLError(f"{env_config.id} cannot render: {error}; {WATCH_EXTRA}") \
            from None
    finally:
        env.close()
    return frames, episode_return


def watch_episodes(env_config: EnvConfig, q_values: QFunction,
                   seeds: Sequence[int]) -> np.ndarray:
    """Greedy episodes in the env's own window (``render_mode="human"``); their returns."""
    env = make_env(_rendering(env_config, "human"))
    try:
        return np.array([_greedy_episode(env, q_values, seed) for seed in seeds])
    except gym.error.DependencyNotInstalled as error:
        raise HindsightRLError(f"{env_config.id} cannot render: {error}; {WATCH_EXTRA}") \
            from None
    finally:
        env.close()


def write_gif(frames: Sequence[np.ndarray], path: Path, fps: int) -> None:
    """``frames`` as a looping GIF at ``fps`` (to the format's hundredths of a second),
    written atomically, so a failed write never leaves a truncated file."""
    images = [Image.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:],
                   duration=10 * max(1, round(100 / fps)), loop=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, buffer.getvalue())
