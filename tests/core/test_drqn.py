import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hindsight_rl.core.config import (
    DQNConfig,
    EnvConfig,
    FinetuneConfig,
    NetworkConfig,
    ObservationConfig,
)
from hindsight_rl.core.dqn import Member, RunSpec, WarmStart, train_dqn
from hindsight_rl.core.drqn import RecurrentStackRun, SequenceTensors, drqn_loss, episode_ends
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.sequence_replay import SequenceReplay

GRU = NetworkConfig(hidden_sizes=(8, 8), encoder="gru")
NO_VELOCITIES = EnvConfig(id="CartPole-v1", success="truncated",
                          observation=ObservationConfig(keep=[0, 2]))
CONFIG = DQNConfig(total_steps=400, batch_size=8, buffer_size=500, learning_starts=64,
                   train_freq=16, gradient_steps=2, target_update_interval=50, n_step=2,
                   eval_interval=200, eval_episodes=2, keep="last")


def _network(seed: int, members: int = 1) -> QNetwork:
    torch.manual_seed(seed)
    return QNetwork(2, 2, GRU, members=members)


def _batch(members: int = 2, burn_in: int = 3) -> SequenceTensors:
    """Windows of two members' own episodes (lengths 5 and 40), from their replays."""
    batches = []
    for k in range(members):
        rng = np.random.default_rng(k)
        replay = SequenceReplay(100, 2, rng, 0.9, burn_in=burn_in, length=4, n_step=2)
        for length in (5, 40):
            for t in range(length):
                replay.add(rng.normal(size=2), int(rng.integers(2)), float(rng.normal()),
                           rng.normal(size=2), t == length - 1, False)
        batches.append(replay.sample(6))
    return SequenceTensors.stack(batches)


def test_the_loss_is_the_mean_huber_error_over_the_steps_that_learn():
    online, target = _network(0, members=2), _network(1, members=2)
    batch = _batch()
    loss = drqn_loss(batch, online, target, CONFIG)
    with torch.no_grad():
        q = online.sequence(batch.obs, reset=batch.reset_hidden)[0]
        next_q = target.sequence(batch.obs, reset=batch.reset_hidden)[0]
    for k in range(2):
        errors = []
        for b in range(6):
            for t in range(batch.action.shape[2]):
                if batch.learn[k, b, t]:
                    position = int(batch.bootstrap_step[k, b, t])
                    best = int(q[k, b, position].argmax())  # Double DQN: online chooses
                    target_value = (batch.bootstrap_reward[k, b, t]
                                    + batch.discount[k, b, t] * next_q[k, b, position, best])
                    errors.append(F.smooth_l1_loss(q[k, b, t, batch.action[k, b, t]],
                                                   target_value))
        assert errors, "some steps learn"
        assert torch.isclose(loss[k], torch.stack(errors).mean(), atol=1e-6)


def test_burn_in_steps_carry_no_loss():
    online, target = _network(0, members=2), _network(1, members=2)
    batch = _batch(burn_in=3)
    burning = (batch.learn == 0) & (torch.arange(batch.action.shape[2]) < 3)
    assert burning.any(), "windows that start mid-episode warm up first"
    flipped = batch._replace(action=torch.where(burning, 1 - batch.action, batch.action),
                             bootstrap_reward=torch.where(burning, batch.bootstrap_reward + 100,
                                                          batch.bootstrap_reward))
    assert torch.equal(drqn_loss(batch, online, target, CONFIG),
                       drqn_loss(flipped, online, target, CONFIG))


def test_members_losses_and_gradients_never_mix():
    online, target = _network(0, members=2), _network(1, members=2)
    batch = _batch()
    loss = drqn_loss(batch, online, target, CONFIG)
    (gradient,) = torch.autograd.grad(loss[0], [online.encoder.gru.weight_hh])
    assert gradient[0].abs().sum() > 0 and not gradient[1].any()


def test_warm_start_rows_end_episodes_where_they_end():
    warm_start = WarmStart(obs=np.zeros((6, 2)), action=np.zeros(6, np.int64),
                           reward=np.ones(6), next_obs=np.zeros((6, 2)),
                           terminated=np.array([0, 1, 0, 0, 0, 0], bool),
                           episode_id=np.array([0, 0, 1, 1, 2, 2]))
    assert episode_ends(warm_start).tolist() == [False, True, False, True, False, True]


def test_an_actor_forgets_its_episode_when_the_next_begins():
    run = RecurrentStackRun([Member(_network(0), 0)], RunSpec(NO_VELOCITIES, CONFIG, [9]))
    member = run.members[0]
    remembered = False
    for _ in range(500):
        run.act()
        if member.episode_slots:
            remembered |= bool(run.acting.hidden.any())
        else:  # an episode just ended; the next one starts from nothing
            assert not run.acting.hidden.any()
            break
    else:
        pytest.fail("no episode ended in 500 steps")
    assert remembered


def test_recurrent_training_is_reproducible_and_changes_every_part():
    def train():
        warm = _network(0)
        return train_dqn([Member(warm, 0)], NO_VELOCITIES, CONFIG, [9])[0].network
    first, second = train(), train()
    start = _network(0).state_dict()
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key])
        if key.endswith(("weight", "weight_ih", "weight_hh")):
            assert not torch.equal(value, start[key]), f"{key} trained"


def test_a_frozen_trunk_stays_bit_identical_under_a_training_gru():
    start = _network(0)
    trained = train_dqn([Member(_network(0), 0)], NO_VELOCITIES, CONFIG, [9],
                        finetune=FinetuneConfig(frozen=("trunk",)),
                        transferred=("trunk", "head"))[0]
    before, after = start.state_dict(), trained.network.state_dict()
    assert trained.frozen == ("trunk",)
    assert all(torch.equal(after[key], before[key]) for key in before if key.startswith("trunk"))
    assert not torch.equal(after["encoder.gru.weight_hh"], before["encoder.gru.weight_hh"])
