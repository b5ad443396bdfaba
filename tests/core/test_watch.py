from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from hindsight_rl.core import watch
from hindsight_rl.core.config import EnvConfig
from hindsight_rl.core.errors import HindsightRLError


def test_an_env_that_cannot_render_names_the_extra_to_install(monkeypatch):
    class NoRenderer(gym.Wrapper):
        def render(self):
            raise gym.error.DependencyNotInstalled("pygame is not installed")

    make_env = watch.make_env
    monkeypatch.setattr(watch, "make_env", lambda config: NoRenderer(make_env(config)))
    with pytest.raises(HindsightRLError, match=r'cannot render: .*pip install -e "\.\[watch\]"'):
        watch.episode_frames(EnvConfig(id="CartPole-v1"),
                             lambda obs: np.zeros((len(obs), 2)), seed=0)


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
            watch.write_gif(frames, target, fps=30)
    assert list(tmp_path.iterdir()) == []
    watch.write_gif(frames, target, fps=30)
    assert [p.name for p in tmp_path.iterdir()] == ["out.gif"]
