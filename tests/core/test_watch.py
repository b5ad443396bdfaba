import io
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from PIL import Image

from hindsight_rl.core import watch
from hindsight_rl.core.config import EnvConfig
from hindsight_rl.core.errors import HindsightRLError
from hindsight_rl.core.evaluation import greedy


def test_an_env_that_cannot_render_says_why(monkeypatch):
    class NoRenderer(gym.Wrapper):
        def render(self):
            raise gym.error.DependencyNotInstalled("pygame is not installed")

    make_env = watch.make_env
    monkeypatch.setattr(watch, "make_env", lambda config: NoRenderer(make_env(config)))
    with pytest.raises(HindsightRLError, match="CartPole-v1 cannot render: pygame is not "):
        watch.episode_frames(EnvConfig(id="CartPole-v1"),
                             greedy(lambda obs: np.zeros((len(obs), 2))), seed=0)


def test_a_failed_gif_write_leaves_no_file(tmp_path, monkeypatch):
    frames = [np.zeros((4, 4, 3), np.uint8)] * 2
    target = tmp_path / "out.gif"
    write_bytes = Path.write_bytes

    def disk_full(path, data):
        write_bytes(path, data[:6])  # a truncated start...
        raise OSError(28, "No space left on device")  # ...then the disk is full

    with monkeypatch.context() as patch:
        patch.setattr(Path, "write_bytes", disk_full)
        with pytest.raises(OSError):
            watch.write_recording(frames, target, fps=30)
    assert list(tmp_path.iterdir()) == []
    watch.write_recording(frames, target, fps=30)
    assert [p.name for p in tmp_path.iterdir()] == ["out.gif"]


@greedy
def _push_right(obs: np.ndarray) -> np.ndarray:
    return np.tile([0.0, 1.0], (len(obs), 1))


def test_frames_are_capped_and_scaled_but_the_return_is_the_whole_episode():
    frames, episode_return = watch.episode_frames(EnvConfig(id="CartPole-v1"), _push_right,
                                                  seed=0, max_frames=5, width=150)
    _, full_return = watch.episode_frames(EnvConfig(id="CartPole-v1"), _push_right, seed=0)
    assert len(frames) == 5 and frames[0].shape == (100, 150, 3)  # 600x400 halved twice
    assert episode_return == full_return > 5  # the episode went on past the frames kept


def test_an_episode_gif_says_how_much_it_shows_or_why_there_is_none(monkeypatch):
    gif, caption = watch.episode_gif(EnvConfig(id="CartPole-v1"), _push_right, seed=0,
                                     max_frames=4, fps=10)
    assert gif.startswith(b"GIF89a") and caption.endswith("the GIF shows its first 3 steps")
    monkeypatch.setattr(watch, "make_env", lambda config: gym.make("CartPole-v1"))  # no mode
    gif, caption = watch.episode_gif(EnvConfig(id="CartPole-v1"), _push_right, seed=0,
                                     max_frames=4, fps=10)
    with Image.open(io.BytesIO(gif)) as image:
        assert image.n_frames == 1
    assert caption == "not recorded: CartPole-v1 draws no RGB frames " \
                      "(render_mode='rgb_array' gave NoneType)"


class _RightThenLeft:
    """A policy with a memory: pushes right for its episode's first 5 steps, then left."""

    def __init__(self) -> None:
        self.steps: np.ndarray | None = None

    def start(self, episodes: int) -> None:
        self.steps = np.zeros(episodes, int)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        self.steps += 1
        return (self.steps <= 5).astype(int)


def test_a_policy_with_a_memory_starts_each_episode_it_plays(monkeypatch):
    policy, cartpole = _RightThenLeft(), EnvConfig(id="CartPole-v1")
    _, first = watch.episode_frames(cartpole, policy, seed=0, max_frames=1)
    _, again = watch.episode_frames(cartpole, policy, seed=0, max_frames=1)
    assert first == again and policy.steps.shape == (1,) and policy.steps[0] == first
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")  # pygame's window, with no display here
    assert watch.watch_episodes(cartpole, policy, [0, 0]).tolist() == [first, first]
