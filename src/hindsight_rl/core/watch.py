"""Watching a policy: one greedy episode (a Q-network's argmax or an actor's mean action)
as frames (for a GIF or a video) or in a window.

Rendering needs the env's renderer: the classic-control tasks draw with pygame (a
dependency); other tasks' renderers are Gymnasium's extras, which its error names.
"""

from __future__ import annotations

import io
import tempfile
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np
from PIL import Image, ImageDraw

from hindsight_rl.core.artefacts import write_atomically
from hindsight_rl.core.config import EnvConfig
from hindsight_rl.core.envs import make_env
from hindsight_rl.core.errors import HindsightRLError
from hindsight_rl.core.evaluation import Actions, env_action, remembers

WATCH_EXTRA = 'pip install -e ".[watch]"'
GIF_WIDTH = 300
"""Pixels across of the evaluate stage's GIFs: half the classic-control tasks' 600, small
enough to embed a dozen in one HTML report."""


def _rendering(env_config: EnvConfig, render_mode: str) -> EnvConfig:
    return env_config.model_copy(
        update={"make_kwargs": {**env_config.make_kwargs, "render_mode": render_mode}})


def _greedy_episode(env: gym.Env, actions: Actions, seed: int,
                    on_step: Callable[[], object] = lambda: None) -> float:
    """Play one episode of the deterministic policy ``actions`` from ``seed``, calling
    ``on_step`` after the reset and every step; its undiscounted return. A policy with a
    memory (:func:`remembers`) starts one episode, forgetting any played before."""
    if remembers(actions):
        actions.start(1)
    obs, _ = env.reset(seed=seed)
    on_step()
    total, done = 0.0, False
    while not done:
        action = env_action(actions(obs[None].astype(np.float32))[0])
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        done = terminated or truncated
        on_step()
    return total


def episode_frames(env_config: EnvConfig, actions: Actions, seed: int,
                   max_frames: int | None = None, width: int | None = None
                   ) -> tuple[list[np.ndarray], float]:
    """The RGB frames of one greedy episode from ``seed`` (the first after the reset, then
    one per step; the first ``max_frames`` of them, scaled to ``width`` pixels if given) and
    the whole episode's return."""
    env = make_env(_rendering(env_config, "rgb_array"))
    frames: list[np.ndarray] = []

    def capture() -> None:
        if max_frames is None or len(frames) < max_frames:
            frames.append(_scaled(env.render(), width, env_config.id))

    try:
        episode_return = _greedy_episode(env, actions, seed, capture)
    except gym.error.DependencyNotInstalled as error:
        raise HindsightRLError(f"{env_config.id} cannot render: {error}") from None
    finally:
        env.close()
    return frames, episode_return


def _scaled(frame: np.ndarray | None, width: int | None, env_id: str) -> np.ndarray:
    if not isinstance(frame, np.ndarray):
        raise HindsightRLError(f"{env_id} draws no RGB frames (render_mode='rgb_array' "
                               f"gave {type(frame).__name__})")
    if width is None or frame.shape[1] == width:
        return frame
    height = max(1, round(frame.shape[0] * width / frame.shape[1]))
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.BILINEAR))


def episode_gif(env_config: EnvConfig, actions: Actions, seed: int, max_frames: int,
                fps: int, width: int = GIF_WIDTH) -> tuple[bytes, str]:
    """One greedy episode as a short GIF for a report, and a caption saying its return and
    how much of it is shown; for an env that cannot draw itself, a GIF saying why."""
    try:
        frames, episode_return = episode_frames(env_config, actions, seed, max_frames, width)
    except HindsightRLError as error:
        return text_gif(f"Not recorded: {error}"), f"not recorded: {error}"
    shown = f"its first {len(frames) - 1} steps" if len(frames) == max_frames else "all of it"
    return (gif_bytes(frames, fps),
            f"return {episode_return:.1f} from seed {seed}; the GIF shows {shown}")


def watch_episodes(env_config: EnvConfig, actions: Actions,
                   seeds: Sequence[int]) -> np.ndarray:
    """Greedy episodes in the env's own window (``render_mode="human"``); their returns."""
    env = make_env(_rendering(env_config, "human"))
    try:
        return np.array([_greedy_episode(env, actions, seed) for seed in seeds])
    except gym.error.DependencyNotInstalled as error:
        raise HindsightRLError(f"{env_config.id} cannot render: {error}") from None
    finally:
        env.close()


def gif_bytes(frames: Sequence[np.ndarray], fps: int) -> bytes:
    """``frames`` as a looping GIF at ``fps`` (to the format's hundredths of a second)."""
    images = [Image.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:],
                   duration=10 * max(1, round(100 / fps)), loop=0)
    return buffer.getvalue()


def text_gif(text: str, width: int = 300) -> bytes:
    """A one-frame GIF that says ``text``: what a report shows for an episode that could
    not be drawn, so the reason is where the picture would be."""
    image = Image.new("RGB", (width, width * 2 // 3), "white")
    ImageDraw.Draw(image).multiline_text((8, 8), textwrap.fill(text, width // 7), fill="black")
    return gif_bytes([np.asarray(image)], fps=1)


def mp4_bytes(frames: Sequence[np.ndarray], fps: int) -> bytes:
    """``frames`` as an H.264 MP4 (imageio's ffmpeg, the ``watch`` extra): a full-length
    episode at full size, which a GIF would make large."""
    try:
        import imageio.v2 as imageio
    except ImportError:
        raise HindsightRLError(f"writing .mp4 needs imageio[ffmpeg]: {WATCH_EXTRA}") from None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "episode.mp4"
        # 8-pixel blocks: the classic-control tasks' 600x400 frames need no resizing
        imageio.mimwrite(path, list(frames), format="FFMPEG", fps=fps, macro_block_size=8)
        return path.read_bytes()


RECORDINGS = {".gif": gif_bytes, ".mp4": mp4_bytes}
"""What ``play --record`` writes, by the file's suffix."""


def write_recording(frames: Sequence[np.ndarray], path: Path, fps: int) -> None:
    """``frames`` as a GIF or MP4 file by ``path``'s suffix (:data:`RECORDINGS`), written
    atomically, so a failed write never leaves a truncated file."""
    payload = RECORDINGS[path.suffix.lower()](frames, fps)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, payload)
