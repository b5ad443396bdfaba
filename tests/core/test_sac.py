import logging
import math

import numpy as np
import pandas as pd
import pytest
import torch

from hindsight_rl.core import sac
from hindsight_rl.core.actor_critic import GaussianActor, TwinCritic
from hindsight_rl.core.checkpoints import Checkpoints
from hindsight_rl.core.config import EnvConfig, FinetuneConfig, NetworkConfig, SACConfig
from hindsight_rl.core.dqn import NonFiniteLossError
from hindsight_rl.core.policy_file import Policy
from hindsight_rl.core.replay import Batch
from hindsight_rl.core.sac import (
    SACMember,
    actor_loss,
    critic_loss,
    critic_targets,
    temperature_loss,
    train_sac,
)
from hindsight_rl.core.training import fresh_actor_critic, fresh_network, transferred_actor_critic

NETWORK = NetworkConfig(hidden_sizes=(8, 8))
LOW, HIGH = np.array([-2.0], np.float32), np.array([2.0], np.float32)
PENDULUM = EnvConfig(id="Pendulum-v1")
TINY = SACConfig(total_steps=300, batch_size=16, buffer_size=500, learning_starts=32,
                 train_freq=4, gradient_steps=2, eval_interval=100, eval_episodes=1)


def _constant_actor(mean: float, log_std: float) -> GaussianActor:
    actor = GaussianActor(1, LOW, HIGH, NETWORK)
    with torch.no_grad():
        actor.head.weight.zero_()
        actor.head.bias[0, 0] = torch.tensor([mean, log_std])
    return actor


def _constant_critic(q1: float, q2: float) -> TwinCritic:
    critic = TwinCritic(1, LOW, HIGH, NETWORK)
    with torch.no_grad():
        critic.head.weight.zero_()
        critic.head.bias[:, 0, 0] = torch.tensor([q1, q2])
    return critic


def _batch(rows: int = 2) -> Batch:
    """``rows`` transitions of one member: rewards 1 and 2, discounts 0.9 and 0 (ended)."""
    return Batch(obs=torch.zeros(1, rows, 1), action=torch.full((1, rows, 1), 0.5),
                 bootstrap_reward=torch.tensor([[1.0, 2.0]]),
                 bootstrap_obs=torch.ones(1, rows, 1), discount=torch.tensor([[0.9, 0.0]]),
                 return_to_go=torch.tensor([[4.0, 0.0]]), rtg_valid=torch.tensor([[1.0, 0.0]]))


def _log_prob(mean: float, log_std: float, noise: float, scale: float) -> float:
    u = mean + math.exp(log_std) * noise
    return (-0.5 * noise ** 2 - log_std - 0.5 * math.log(2 * math.pi)
            - math.log(1 - math.tanh(u) ** 2) - math.log(scale))


def test_critic_targets_are_the_soft_bellman_backup_by_hand():
    actor, target = _constant_actor(0.3, -0.5), _constant_critic(3.0, 2.5)
    noise = torch.tensor([[[0.2], [-1.0]]])
    alpha = torch.tensor([0.1])
    got = critic_targets(_batch(), actor, target, alpha, noise)
    soft = [2.5 - 0.1 * _log_prob(0.3, -0.5, n, 2.0) for n in (0.2, -1.0)]
    expected = [1.0 + 0.9 * soft[0], 2.0 + 0.0 * soft[1]]
    np.testing.assert_allclose(got[0].numpy(), expected, rtol=1e-5)


def test_the_critic_loss_sums_both_critics_and_their_return_to_go_terms():
    critic = _constant_critic(3.0, 1.0)
    targets = torch.tensor([[2.0, 4.0]])
    config = SACConfig(rtg_coef=0.5)
    got = critic_loss(_batch(), critic, targets, config)
    td = 0.5 * (((3 - 2) ** 2 + (3 - 4) ** 2) / 2 + ((1 - 2) ** 2 + (1 - 4) ** 2) / 2)
    rtg = 0.5 * ((4 - 3) ** 2 + (4 - 1) ** 2)  # only the first row's return is exact
    assert got.item() == pytest.approx(td + rtg)
    config = SACConfig(rtg_coef=0.5, rtg_loss="lower_bound")
    critic_above = _constant_critic(5.0, 1.0)
    td_above = 0.5 * (((5 - 2) ** 2 + (5 - 4) ** 2) / 2 + ((1 - 2) ** 2 + (1 - 4) ** 2) / 2)
    assert critic_loss(_batch(), critic_above, targets, config).item() == pytest.approx(
        td_above + 0.5 * (4 - 1) ** 2), "lower_bound only lifts Q up to the return"


def test_the_actor_loss_trades_entropy_against_the_smaller_critic():
    critic = _constant_critic(3.0, 2.0)
    log_prob = torch.tensor([[-1.0, 0.5]])
    got = actor_loss(torch.zeros(1, 2, 1), torch.zeros(1, 2, 1), log_prob, critic,
                     torch.tensor([0.2]))
    assert got.item() == pytest.approx(((0.2 * -1.0 - 2.0) + (0.2 * 0.5 - 2.0)) / 2)


@pytest.mark.parametrize(("log_prob", "direction"), [(-3.0, -1), (2.0, 1)])
def test_the_temperature_moves_toward_the_target_entropy(log_prob, direction):
    """Entropy −log π above the target (−1) lowers α; below it raises α."""
    log_alpha = torch.zeros(1, 1, requires_grad=True)
    optimiser = torch.optim.Adam([log_alpha], lr=0.01)
    for _ in range(50):
        optimiser.zero_grad()
        temperature_loss(log_alpha, torch.full((1, 8), log_prob), -1.0).sum().backward()
        optimiser.step()
    assert np.sign(log_alpha.item()) == direction


def _members(seeds, config=TINY):
    no_data = np.zeros((0, 3), np.float32)
    return [SACMember(*fresh_actor_critic(PENDULUM, NETWORK, config, seed, no_data), seed)
            for seed in seeds]


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                   b.state_dict().values(), strict=True))


def test_a_stacked_seed_trains_as_it_would_alone():
    """Members never mix; unlike DQN's (ReLU only), SAC's tanh, exp and softplus take
    vectorised or scalar paths by position in a tensor, so stacking moves a member's
    numbers by rounding only."""
    stacked = train_sac(_members([0, 1]), PENDULUM, TINY, eval_seeds=[7])
    alone = train_sac(_members([1]), PENDULUM, TINY, eval_seeds=[7])
    for key, value in alone[0].network.state_dict().items():
        torch.testing.assert_close(stacked[1].network.state_dict()[key], value, rtol=1e-4,
                                   atol=1e-5)
    pd.testing.assert_frame_equal(stacked[1].history, alone[0].history, rtol=1e-4)
    assert not _same_weights(stacked[0].network, stacked[1].network)
    again = train_sac(_members([0, 1]), PENDULUM, TINY, eval_seeds=[7])
    assert _same_weights(again[0].network, stacked[0].network), "reproducible"
    metrics = set(stacked[0].history["metric"])
    assert metrics == {"eval_return", "episode_return", "loss"}


def test_frozen_transferred_parts_stay_bit_identical_in_fine_tuning():
    """MountainCar-v0's Q-network into MountainCarContinuous-v0: the same 2-d observation,
    so the encoder and trunk carry over; the trunk stays frozen throughout."""
    q_network = fresh_network(EnvConfig(id="MountainCar-v0"), NETWORK, 5,
                              np.zeros((0, 2), np.float32))
    pretrained = Policy(network=q_network, env=EnvConfig(id="MountainCar-v0"), gamma=0.99)
    target = EnvConfig(id="MountainCarContinuous-v0")
    actor, critic, parts = transferred_actor_critic(pretrained, target, TINY, 0,
                                                    np.zeros((0, 2), np.float32))
    assert parts == ["encoder", "trunk"]
    finetune = FinetuneConfig(frozen=("trunk",), unfreeze_patience=None)
    [result] = train_sac([SACMember(actor, critic, 0)], target, TINY, eval_seeds=[7],
                         finetune=finetune, transferred=parts)
    trunk = q_network.trunk.state_dict()
    assert all(torch.equal(value, trunk[key])
               for key, value in result.network.trunk.state_dict().items())
    assert not torch.equal(result.network.encoder[0].weight, q_network.encoder[0].weight)
    assert result.frozen == ("trunk",)


def test_a_non_finite_loss_stops_the_run_naming_the_member(monkeypatch):
    monkeypatch.setattr(sac._SACRun, "update",
                        lambda self, config: torch.full((len(self.members),), float("nan")))
    with pytest.raises(NonFiniteLossError, match=r"sac seed 3: critic loss became nan at env "
                                                 r"step 32; no finite loss before it"):
        train_sac(_members([3]), PENDULUM, TINY, eval_seeds=[7])


def _interrupt_at(monkeypatch, step: int):
    """Training bursts stop the run with a KeyboardInterrupt from env step ``step`` on;
    returns the real burst, to put back."""
    real = sac._train_burst

    def interrupted(run, config):
        if run.step >= step:
            raise KeyboardInterrupt
        real(run, config)

    monkeypatch.setattr(sac, "_train_burst", interrupted)
    return real


def test_a_resumed_run_ends_where_an_uninterrupted_one_would(tmp_path, monkeypatch, caplog):
    reference = train_sac(_members([2, 3]), PENDULUM, TINY, eval_seeds=[7])
    checkpoints = Checkpoints(tmp_path, interval=100)
    real = _interrupt_at(monkeypatch, 250)
    with pytest.raises(KeyboardInterrupt):
        train_sac(_members([2, 3]), PENDULUM, TINY, eval_seeds=[7], checkpoints=checkpoints)
    monkeypatch.setattr(sac, "_train_burst", real)
    with caplog.at_level(logging.INFO):
        resumed = train_sac(_members([2, 3]), PENDULUM, TINY, eval_seeds=[7],
                            checkpoints=checkpoints)
    assert "resuming from" in caplog.text
    for before, after in zip(reference, resumed, strict=True):
        assert _same_weights(before.network, after.network)
        pd.testing.assert_frame_equal(before.history, after.history)
    assert not list(tmp_path.glob("*.safetensors"))


def test_a_fixed_temperature_never_moves():
    config = TINY.model_copy(update={"ent_coef": 0.05})
    members = _members([0], config=config)
    run = sac._SACRun(members, sac.RunSpec(PENDULUM, config, [7]))
    before = run.log_alpha.clone()
    for member in run.members:
        for _ in range(40):
            member.step_env(member.uniform_action(), 1, run.spec)
    run.update(config)
    assert torch.equal(run.log_alpha, before) and run.alpha.item() == pytest.approx(0.05)


def test_pink_noise_is_unit_variance_correlated_in_time_and_seeded():
    draws = sac.pink_noise(1000, 200, np.random.default_rng(0))
    assert draws.shape == (1000, 200)
    assert np.mean(draws.var(axis=0)) == pytest.approx(1.0, abs=0.1)
    lag_one = np.mean([np.corrcoef(column[:-1], column[1:])[0, 1] for column in draws.T])
    assert lag_one > 0.5, "white noise would give about 0"
    np.testing.assert_array_equal(draws, sac.pink_noise(1000, 200, np.random.default_rng(0)))


def test_pink_acting_noise_runs_and_resumes(tmp_path, monkeypatch):
    config = TINY.model_copy(update={"action_noise": "pink"})
    reference = train_sac(_members([4], config=config), PENDULUM, config, eval_seeds=[7])
    white = train_sac(_members([4]), PENDULUM, TINY, eval_seeds=[7])
    assert not _same_weights(reference[0].network, white[0].network)
    checkpoints = Checkpoints(tmp_path, interval=100)
    real = _interrupt_at(monkeypatch, 150)  # mid-episode: its pink sequence is restored
    with pytest.raises(KeyboardInterrupt):
        train_sac(_members([4], config=config), PENDULUM, config, eval_seeds=[7],
                  checkpoints=checkpoints)
    monkeypatch.setattr(sac, "_train_burst", real)
    resumed = train_sac(_members([4], config=config), PENDULUM, config, eval_seeds=[7],
                        checkpoints=checkpoints)
    assert _same_weights(reference[0].network, resumed[0].network)


def test_unfreezing_lets_the_trunk_train_in_the_actor_and_both_critics(monkeypatch):
    q_network = fresh_network(EnvConfig(id="MountainCar-v0"), NETWORK, 5,
                              np.zeros((0, 2), np.float32))
    pretrained = Policy(network=q_network, env=EnvConfig(id="MountainCar-v0"), gamma=0.99)
    target = EnvConfig(id="MountainCarContinuous-v0")
    actor, critic, parts = transferred_actor_critic(pretrained, target, TINY, 0,
                                                    np.zeros((0, 2), np.float32))
    unfrozen = []
    real = sac._SACRun.unfreeze

    def record(run, members=None):
        real(run, members)
        unfrozen.append([p.requires_grad for p in run.critic.trunk.parameters()])

    monkeypatch.setattr(sac._SACRun, "unfreeze", record)
    finetune = FinetuneConfig(frozen=("trunk",), unfreeze_after_steps=100,
                              unfreeze_patience=None)
    [result] = train_sac([SACMember(actor, critic, 0)], target, TINY, eval_seeds=[7],
                         finetune=finetune, transferred=parts)
    assert unfrozen and all(unfrozen[0]), "the critics' trunk trains once unfrozen"
    assert result.frozen == ()
    trunk = q_network.trunk.state_dict()
    assert not all(torch.equal(value, trunk[key])
                   for key, value in result.network.trunk.state_dict().items())


def test_recorded_returns_are_the_envs_own_rewards_summed_not_the_float32_replays(
        stored_rewards):
    config = TINY.model_copy(update={"total_steps": 400})
    [result] = train_sac(_members([5], config=config), PENDULUM, config, eval_seeds=[7])
    history = result.history
    returns = history[history["metric"] == "episode_return"]["value"].tolist()
    episodes = [stored_rewards[:200], stored_rewards[200:]]   # Pendulum-v1 truncates at 200 steps
    assert returns == [sum(rewards) for rewards in episodes]
    assert returns != [float(np.float32(rewards).sum()) for rewards in episodes]
