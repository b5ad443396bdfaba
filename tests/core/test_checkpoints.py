import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import safetensors.torch
import torch

from hindsight_rl.core import dqn, drqn
from hindsight_rl.core.checkpoints import Checkpoint, CheckpointError, Checkpoints
from hindsight_rl.core.config import DQNConfig, EnvConfig, FinetuneConfig
from hindsight_rl.core.policy_file import metadata_document
from hindsight_rl.core.training import fresh_network

CARTPOLE = EnvConfig(id="CartPole-v1")
CONFIG = DQNConfig(total_steps=700, batch_size=16, buffer_size=500, learning_starts=32,
                   train_freq=16, gradient_steps=2, target_update_interval=50,
                   eval_interval=200, eval_episodes=2)


def _train(tiny_network, checkpoints, unfreeze_after_steps=None, seeds=(3,), taught=False,
           patience=None, encoder="mlp", novelty=0.0):
    """A run of ``seeds``; ``taught``: as if every part were transferred, with a teacher (and
    its best-so-far weights and scores to checkpoint); ``patience``: the trunk frozen until a
    member's curve stalls; ``encoder: gru``: a recurrent network (its sequence replay and
    the actors' memory to checkpoint); ``novelty``: the count-based bonus's coefficient (its
    visit counts to checkpoint)."""
    network = tiny_network.model_copy(update={"encoder": encoder})
    members = [dqn.Member(fresh_network(CARTPOLE, network, seed,
                                        np.zeros((0, 4), np.float32)), seed)
               for seed in seeds]
    frozen = ("trunk",) if unfreeze_after_steps is not None or patience else ()
    finetune = FinetuneConfig(frozen=frozen, unfreeze_after_steps=unfreeze_after_steps,
                              unfreeze_patience=patience, teacher_coef=1.0 if taught else 0.0)
    config = CONFIG.model_copy(update={"novelty_coef": novelty})
    return dqn.train_dqn(members, CARTPOLE, config, eval_seeds=[9000, 9001], finetune=finetune,
                         label="test run", checkpoints=checkpoints,
                         transferred=("encoder", "trunk", "head") if taught else ())


def _interrupt_at(monkeypatch, step):
    """Every training burst from env step ``step`` on raises KeyboardInterrupt; returns the
    real burst to put back."""
    real = dqn.train_burst

    def interrupted(run, loss_of_batch):
        if run.step >= step:
            raise KeyboardInterrupt
        real(run, loss_of_batch)

    for module in (dqn, drqn):
        monkeypatch.setattr(module, "train_burst", interrupted)
    return real


def _interrupted_checkpoint(tmp_path, monkeypatch, tiny_network):
    """A run interrupted at env step 500: its checkpoints and the one file it left."""
    checkpoints = Checkpoints(tmp_path, interval=100)
    _interrupt_at(monkeypatch, 500)
    with pytest.raises(KeyboardInterrupt):
        _train(tiny_network, checkpoints)
    (path,) = tmp_path.glob("*.safetensors")
    return checkpoints, path


# Checkpoints every 100 env steps fall mid-episode for some seeds: resuming replays the
# episode's stored actions to bring each env back to where it was.
@pytest.mark.parametrize(
    ("unfreeze_after_steps", "seeds", "taught", "patience", "encoder", "novelty"), [
        (None, (3,), False, None, "mlp", 0.0), (300, (3,), False, None, "mlp", 0.0),
        (None, (3, 4), False, None, "mlp", 0.0), (None, (3, 4), True, None, "mlp", 0.0),
        (None, (3, 4), False, 1, "mlp", 0.0), (None, (3, 4), False, None, "gru", 0.0),
        (None, (3, 4), False, None, "mlp", 0.1)])
def test_resumed_run_ends_where_an_uninterrupted_one_would(
        tmp_path, monkeypatch, caplog, tiny_network, unfreeze_after_steps, seeds, taught,
        patience, encoder, novelty):
    options = (unfreeze_after_steps, seeds, taught, patience, encoder, novelty)
    reference = _train(tiny_network, None, *options)
    checkpoints = Checkpoints(tmp_path, interval=100)
    real = _interrupt_at(monkeypatch, 500)
    with pytest.raises(KeyboardInterrupt):
        _train(tiny_network, checkpoints, *options)
    assert len(list(tmp_path.glob("*.safetensors"))) == 1
    for module in (dqn, drqn):
        monkeypatch.setattr(module, "train_burst", real)
    with caplog.at_level(logging.INFO):
        resumed = _train(tiny_network, checkpoints, *options)
    assert "resuming from" in caplog.text
    for before, after in zip(reference, resumed, strict=True):
        expected, got = before.network.state_dict(), after.network.state_dict()
        assert all(torch.equal(expected[k], got[k]) for k in expected)
        pd.testing.assert_frame_equal(before.history, after.history)
    assert not list(tmp_path.glob("*.safetensors")), "a finished run removes its checkpoint"


def test_a_changed_config_does_not_resume_another_runs_checkpoint(tmp_path, monkeypatch,
                                                                  tiny_network):
    checkpoints, _ = _interrupted_checkpoint(tmp_path, monkeypatch, tiny_network)
    with pytest.raises(KeyboardInterrupt):
        _train(tiny_network, checkpoints, unfreeze_after_steps=300)
    assert len(list(tmp_path.glob("*.safetensors"))) == 2


def test_corrupted_checkpoint_is_a_clear_error(tmp_path, monkeypatch, tiny_network):
    checkpoints, path = _interrupted_checkpoint(tmp_path, monkeypatch, tiny_network)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="delete it to start this run afresh"):
        _train(tiny_network, checkpoints)


def test_checkpoint_of_another_format_version_is_a_clear_error(tmp_path, monkeypatch,
                                                               tiny_network):
    checkpoints, path = _interrupted_checkpoint(tmp_path, monkeypatch, tiny_network)
    data = path.read_bytes()
    tensors, document = safetensors.torch.load(data), metadata_document(data, "hindsight_rl")
    document["format_version"] = 1  # before the stacked seeds' member-by-member layout
    path.write_bytes(safetensors.torch.save(
        tensors, metadata={"hindsight_rl": json.dumps(document)}))
    with pytest.raises(CheckpointError, match="v2 file .*delete it to start this run afresh"):
        _train(tiny_network, checkpoints)


def test_a_checkpoint_from_before_the_episodes_own_reward_sum_was_kept_resumes_exactly(
        tmp_path, monkeypatch, tiny_network):
    reference = _train(tiny_network, None)
    real = _interrupt_at(monkeypatch, 500)
    checkpoints = Checkpoints(tmp_path, interval=100)
    with pytest.raises(KeyboardInterrupt):
        _train(tiny_network, checkpoints)
    (path,) = tmp_path.glob("*.safetensors")
    data = path.read_bytes()
    tensors, document = safetensors.torch.load(data), metadata_document(data, "hindsight_rl")
    for member in document["members"]:
        assert member.pop("episode_reward") != 0.0   # mid-episode: CartPole pays every step
    path.write_bytes(safetensors.torch.save(
        tensors, metadata={"hindsight_rl": json.dumps(document)}))
    for module in (dqn, drqn):
        monkeypatch.setattr(module, "train_burst", real)
    [resumed] = _train(tiny_network, checkpoints)
    pd.testing.assert_frame_equal(reference[0].history, resumed.history)


def _checkpoint() -> Checkpoint:
    return Checkpoint({"w": torch.arange(4.0)}, {"step": 7})


def test_a_save_never_touches_another_writers_temporary_file(tmp_path):
    """Two runs of one command write one checkpoint file; a save must neither rename the
    other process's half-written temporary into place nor delete it."""
    checkpoints = Checkpoints(tmp_path, interval=100)
    path = checkpoints.path("k" * 64, "finetune seed 0")
    others = [path.with_name(f".{path.name}.tmp"),  # the name every process used before
              path.with_name(f".{path.name}.99999.{'0' * 32}.tmp")]
    for other in others:
        other.write_bytes(b"half of another process's checkpoint")
    checkpoints.save("k" * 64, "finetune seed 0", _checkpoint())
    assert [other.read_bytes() for other in others] == [b"half of another process's "
                                                         b"checkpoint"] * 2
    assert checkpoints.load("k" * 64, "finetune seed 0").document["step"] == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [path.name, *(other.name for other in others)])


def test_each_save_writes_through_a_name_of_its_own(tmp_path, monkeypatch):
    checkpoints, names = Checkpoints(tmp_path, interval=100), []
    real_replace = os.replace

    def recording_replace(source, destination):
        names.append(Path(source).name)
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", recording_replace)
    for _ in range(2):
        checkpoints.save("k" * 64, "pretrain", _checkpoint())
    assert len(set(names)) == 2 and all(f".{os.getpid()}." in name for name in names)


def test_a_checkpoint_nested_too_deeply_is_a_checkpoint_error(tmp_path):
    checkpoints = Checkpoints(tmp_path, interval=100)
    path = checkpoints.path("k" * 64, "pretrain")
    document = '{"key": ' + "[" * 50_000 + "]" * 50_000 + "}"
    path.write_bytes(safetensors.torch.save({"w": torch.zeros(1)},
                                            metadata={"hindsight_rl": document}))
    with pytest.raises(CheckpointError, match=r"nested too deeply\); delete it"):
        checkpoints.load("k" * 64, "pretrain")
