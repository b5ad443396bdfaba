import logging

import numpy as np
import pandas as pd
import pytest
import torch

from hindsight_rl.core import dqn
from hindsight_rl.core.checkpoints import CheckpointError, Checkpoints
from hindsight_rl.core.config import DQNConfig, EnvConfig
from hindsight_rl.core.training import fresh_network

CARTPOLE = EnvConfig(id="CartPole-v1")
CONFIG = DQNConfig(total_steps=700, batch_size=16, buffer_size=500, learning_starts=32,
                   train_freq=16, gradient_steps=2, target_update_interval=50,
                   eval_interval=200, eval_episodes=2)


def _train(tiny_network, checkpoints, unfreeze_after_steps=None):
    network = fresh_network(CARTPOLE, tiny_network, 3, np.zeros((0, 4), np.float32))
    frozen = ("trunk",) if unfreeze_after_steps is not None else ()
    return dqn.train_dqn(network, CARTPOLE, CONFIG, seed=3, eval_seeds=[9000, 9001],
                         frozen=frozen, unfreeze_after_steps=unfreeze_after_steps,
                         label="test run", checkpoints=checkpoints)


def _interrupt_at(monkeypatch, step):
    real = dqn._train_burst

    def interrupted(run, config, label):
        if run.step >= step:
            raise KeyboardInterrupt
        real(run, config, label)

    monkeypatch.setattr(dqn, "_train_burst", interrupted)
    return real


@pytest.mark.parametrize("unfreeze_after_steps", [None, 300])
def test_resumed_run_ends_where_an_uninterrupted_one_would(
        tmp_path, monkeypatch, caplog, tiny_network, unfreeze_after_steps):
    reference = _train(tiny_network, None, unfreeze_after_steps)
    checkpoints = Checkpoints(tmp_path, interval=100)
    real = _interrupt_at(monkeypatch, 500)
    with pytest.raises(KeyboardInterrupt):
        _train(tiny_network, checkpoints, unfreeze_after_steps)
    assert len(list(tmp_path.glob("*.safetensors"))) == 1
    monkeypatch.setattr(dqn, "_train_burst", real)
    with caplog.at_level(logging.INFO):
        resumed = _train(tiny_network, checkpoints, unfreeze_after_steps)
    assert "resuming from" in caplog.text
    expected, got = reference.network.state_dict(), resumed.network.state_dict()
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    pd.testing.assert_frame_equal(reference.history, resumed.history)
    assert not list(tmp_path.glob("*.safetensors")), "a finished run removes its checkpoint"


def test_a_changed_config_does_not_resume_another_runs_checkpoint(tmp_path, monkeypatch,
                                                                  tiny_network):
    checkpoints = Checkpoints(tmp_path, interval=100)
    _interrupt_at(monkeypatch, 500)
    with pytest.raises(KeyboardInterrupt):
        _train(tiny_network, checkpoints)
    with pytest.raises(KeyboardInterrupt):
        _train(tiny_network, checkpoints, unfreeze_after_steps=300)
    assert len(list(tmp_path.glob("*.safetensors"))) == 2


def test_corrupted_checkpoint_is_a_clear_error(tmp_path, monkeypatch, tiny_network):
    checkpoints = Checkpoints(tmp_path, interval=100)
    _interrupt_at(monkeypatch, 500)
    with pytest.raises(KeyboardInterrupt):
        _train(tiny_network, checkpoints)
    (path,) = tmp_path.glob("*.safetensors")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="delete it to start this run afresh"):
        _train(tiny_network, checkpoints)
