from dataclasses import replace

import numpy as np
import pytest
import torch

from hindsight_rl.core import dqn
from hindsight_rl.core.config import DQNConfig, GoalConfig, NetworkConfig
from hindsight_rl.core.dqn import (
    NonFiniteLossError,
    TrainResult,
    WarmStart,
    build_optimizer,
    clip_grad_norm,
    epsilon_at,
    td_targets,
    train_dqn,
)
from hindsight_rl.core.networks import QNetwork, set_frozen
from hindsight_rl.core.replay import Batch, ReplayBuffer


def _batch(discount: float) -> Batch:
    one = torch.ones(1)
    return Batch(obs=torch.zeros(1, 1), action=torch.zeros(1, 1, dtype=torch.int64),
                 reward=one, next_obs=torch.ones(1, 1), discount=one * discount,
                 return_to_go=one, rtg_valid=one)


def _constant_network(value: float) -> QNetwork:
    network = QNetwork(1, 2, NetworkConfig(hidden_sizes=(4, 4)))
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.zero_()
        network.head.bias.fill_(value)
    return network


def test_td_target_bootstraps_with_the_rows_discount():
    online, target = _constant_network(5.0), _constant_network(10.0)
    bootstrapped = td_targets(_batch(discount=0.9), online, target, double_dqn=True)
    terminated = td_targets(_batch(discount=0.0), online, target, double_dqn=True)
    assert bootstrapped.item() == torch.tensor(1 + 0.9 * 10.0).item()
    assert terminated.item() == 1.0


def test_double_dqn_values_the_online_choice_with_the_target_network():
    online, target = _constant_network(0.0), _constant_network(0.0)
    with torch.no_grad():
        online.head.bias.copy_(torch.tensor([1.0, 0.0]))  # online prefers action 0
        target.head.bias.copy_(torch.tensor([2.0, 7.0]))  # target would prefer action 1
    double = td_targets(_batch(1.0), online, target, double_dqn=True)
    vanilla = td_targets(_batch(1.0), online, target, double_dqn=False)
    assert double.item() == 3.0 and vanilla.item() == 8.0


def test_epsilon_decays_linearly_then_stays():
    config = DQNConfig(total_steps=1000, exploration_fraction=0.5,
                       exploration_initial_eps=1.0, exploration_final_eps=0.1)
    assert epsilon_at(0, config) == 1.0
    assert np.isclose(epsilon_at(250, config), 0.55)
    assert np.isclose(epsilon_at(900, config), 0.1)


def test_frozen_parts_are_absent_from_the_optimiser(tiny_network):
    network = QNetwork(3, 2, tiny_network)
    set_frozen(network, ["trunk"])
    optimised = {id(p) for group in build_optimizer(network, 1e-3).param_groups
                 for p in group["params"]}
    assert not optimised & {id(p) for p in network.trunk.parameters()}
    assert {id(p) for p in network.head.parameters()} <= optimised


def test_frozen_trunk_is_bit_identical_after_training(corridor, tiny_network, tiny_dqn):
    torch.manual_seed(0)
    network = QNetwork(1, 2, tiny_network)
    trunk_before = {k: v.clone() for k, v in network.trunk.state_dict().items()}
    head_before = network.head.weight.clone()
    result = train_dqn(network, corridor, tiny_dqn, seed=0, eval_seeds=[10],
                       frozen=["trunk"])
    for key, tensor in result.network.trunk.state_dict().items():
        assert torch.equal(tensor, trunk_before[key])
    assert not torch.equal(result.network.head.weight, head_before)


def test_unfreezing_lets_the_trunk_train(corridor, tiny_network, tiny_dqn):
    torch.manual_seed(0)
    network = QNetwork(1, 2, tiny_network)
    before = network.trunk[0].weight.clone()
    config = DQNConfig(**{**tiny_dqn.__dict__, "keep": "last"})
    train_dqn(network, corridor, config, seed=0, eval_seeds=[10], frozen=["trunk"],
              unfreeze_after_steps=100)
    assert not torch.equal(network.trunk[0].weight, before)


def test_training_is_reproducible(corridor, tiny_network, tiny_dqn):
    def run() -> dict[str, torch.Tensor]:
        torch.manual_seed(3)
        return train_dqn(QNetwork(1, 2, tiny_network), corridor, tiny_dqn, seed=3,
                         eval_seeds=[10]).network.state_dict()

    first, second = run(), run()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_dqn_learns_the_corridor(corridor, tiny_network):
    torch.manual_seed(0)
    config = DQNConfig(total_steps=1500, learning_rate=3e-3, batch_size=32, buffer_size=2000,
                       learning_starts=100, gamma=0.9, target_update_interval=50,
                       train_freq=4, gradient_steps=1, exploration_fraction=0.3,
                       eval_interval=500, eval_episodes=2)
    result = train_dqn(QNetwork(1, 2, tiny_network), corridor, config, seed=0,
                       eval_seeds=[10, 11])
    evals = result.history[result.history["metric"] == "eval_return"]["value"]
    assert evals.max() == -2.0  # three steps right: -1, -1, 0


def test_unfreezing_before_the_first_online_step_still_happens(corridor, tiny_network, tiny_dqn):
    torch.manual_seed(0)
    network = QNetwork(1, 2, tiny_network)
    before = network.trunk[0].weight.clone()
    obs = np.zeros((50, 1), np.float32)
    warm = WarmStart(obs, np.ones(50, np.int64), -np.ones(50, np.float32), obs + 1,
                     np.zeros(50, bool))
    config = DQNConfig(**{**tiny_dqn.__dict__, "keep": "last"})
    train_dqn(network, corridor, config, seed=0, eval_seeds=[10], warm_start=warm,
              frozen=["trunk"], unfreeze_after_steps=10)  # step starts at 50
    assert not torch.equal(network.trunk[0].weight, before)


def _poison_after(monkeypatch, calls_before: int, poison):
    """Make ``dqn_loss`` call ``poison(loss, network)`` once ``calls_before`` calls passed."""
    real, calls = dqn.dqn_loss, [0]

    def poisoned(batch, online, target, config):
        calls[0] += 1
        loss = real(batch, online, target, config)
        return poison(loss, online) if calls[0] > calls_before else loss

    monkeypatch.setattr(dqn, "dqn_loss", poisoned)


def _nan_loss(loss, network):
    return loss * float("nan")


def _inf_weight(loss, network):
    with torch.no_grad():
        network.head.bias[0] = float("inf")
    return loss.detach().requires_grad_()


# Bursts of two gradient steps at env steps 32, 48, 64: the third one is poisoned, the
# weights only on its last gradient step so that its loss stays finite.
@pytest.mark.parametrize(("poison", "calls_before", "what"), [
    (_nan_loss, 4, "loss became nan"), (_inf_weight, 5, "weights became non-finite")])
def test_non_finite_training_stops_naming_step_and_last_finite_loss(
        monkeypatch, corridor, tiny_network, tiny_dqn, poison, calls_before, what):
    _poison_after(monkeypatch, calls_before, poison)
    network = QNetwork(1, 2, tiny_network)
    with pytest.raises(NonFiniteLossError,
                       match=rf"{what} at env step 64; last finite loss \d+\.\d+"):
        dqn.train_dqn(network, corridor, tiny_dqn, seed=0, eval_seeds=[0], label="run")


def test_training_stops_at_the_first_curve_point_at_the_threshold(corridor, tiny_network):
    torch.manual_seed(0)
    config = DQNConfig(total_steps=1500, learning_rate=3e-3, batch_size=32, buffer_size=2000,
                       learning_starts=100, gamma=0.9, target_update_interval=50,
                       train_freq=4, gradient_steps=1, exploration_fraction=0.3,
                       eval_interval=100, eval_episodes=2, stop_on_threshold=True)
    result = train_dqn(QNetwork(1, 2, tiny_network), corridor, config, seed=0,
                       eval_seeds=[10, 11])
    evals = result.history[result.history["metric"] == "eval_return"]
    assert result.env_steps < config.total_steps
    assert evals["env_step"].iloc[-1] == result.env_steps
    assert evals["value"].iloc[-1] == -2.0 and (evals["value"].iloc[:-1] < -2.0).all()


@pytest.mark.parametrize("scale", [0.01, 100.0])
def test_gradient_clip_is_torchs_bit_for_bit(scale):
    torch.manual_seed(0)
    grads = [torch.randn(5, 3) * scale, torch.randn(3) * scale]
    ours, torchs = ([torch.nn.Parameter(torch.zeros_like(g)) for g in grads] for _ in range(2))
    for mine, theirs, grad in zip(ours, torchs, grads, strict=True):
        mine.grad, theirs.grad = grad.clone(), grad.clone()
    clip_grad_norm(ours, 10.0)
    torch.nn.utils.clip_grad_norm_(torchs, 10.0, foreach=True)
    assert all(torch.equal(a.grad, b.grad) for a, b in zip(ours, torchs, strict=True))
    if scale > 1:  # over the bound: scaled down to it
        assert torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in ours])) <= 10.0 + 1e-4
    else:  # under it: untouched
        assert torch.equal(ours[0].grad, grads[0])


def test_target_update_copies_current_weights_without_sharing_them(tiny_network):
    online, target = QNetwork(1, 2, tiny_network), QNetwork(1, 2, tiny_network)
    update_target = dqn.weight_copier(online, target)
    with torch.no_grad():
        online.head.bias.add_(1.0)
    update_target()
    assert all(torch.equal(a, b) for a, b in zip(online.state_dict().values(),
                                                 target.state_dict().values(), strict=True))
    with torch.no_grad():
        online.head.bias.add_(1.0)
    assert not torch.equal(online.head.bias, target.head.bias)


def test_relabelled_copies_join_the_buffer_without_counting_as_env_steps(
        corridor, tiny_network, tiny_dqn, monkeypatch):
    goal_corridor = replace(corridor, goal=GoalConfig(achieved=(0,), desired=(3.0,),
                                                      reached_reward=0.0))
    relabelled: list[int] = []
    real_relabel = dqn.relabel_future

    def spy(transitions, goal, k, gamma, rng):
        copies = real_relabel(transitions, goal, k, gamma, rng)
        relabelled.append(len(copies))
        assert len(copies) == k * len(transitions) and k == 3
        return copies

    monkeypatch.setattr(dqn, "relabel_future", spy)
    extended: list[int] = []
    real_extend = ReplayBuffer.extend
    monkeypatch.setattr(ReplayBuffer, "extend",
                        lambda self, obs, *rest: extended.append(len(obs))
                        or real_extend(self, obs, *rest))

    def run() -> TrainResult:
        torch.manual_seed(0)
        return train_dqn(QNetwork(2, 2, tiny_network), goal_corridor, tiny_dqn, seed=0,
                         eval_seeds=[10], her_k=3)

    result = run()
    episodes = result.history[result.history["metric"] == "episode_return"]
    assert result.env_steps == tiny_dqn.total_steps
    assert len(relabelled) == len(episodes) > 0 and extended == relabelled
    again = run().network.state_dict()
    assert all(torch.equal(again[k], v) for k, v in result.network.state_dict().items())


def test_relabelled_copies_do_not_crowd_out_env_steps(tiny_dqn):
    assert dqn.replay_capacity(tiny_dqn, her_k=0) == tiny_dqn.buffer_size
    assert dqn.replay_capacity(tiny_dqn, her_k=4) == 5 * tiny_dqn.buffer_size


def test_each_finished_episode_is_labelled_with_n_step_targets(
        corridor, tiny_network, tiny_dqn, monkeypatch):
    episodes = []
    real_label = ReplayBuffer.label

    def spy(self, slots, return_to_go, valid, bootstrap):
        episodes.append((self.next_obs[slots].copy(), self.terminated[slots].copy(), bootstrap))
        real_label(self, slots, return_to_go, valid, bootstrap)

    monkeypatch.setattr(ReplayBuffer, "label", spy)
    config = replace(tiny_dqn, n_step=3, gamma=0.9)
    train_dqn(QNetwork(1, 2, tiny_network), corridor, config, seed=0, eval_seeds=[10])
    assert episodes
    for next_obs, terminated, bootstrap in episodes:
        length = len(next_obs)
        for t in range(length):
            end = min(t + 3, length) - 1
            assert bootstrap.next_obs[t].tolist() == next_obs[end].tolist()
            expected = 0.0 if terminated[end] else 0.9 ** (end - t + 1)
            assert bootstrap.discount[t] == pytest.approx(expected)


def test_n_step_dqn_learns_the_corridor(corridor, tiny_network):
    torch.manual_seed(0)
    config = DQNConfig(total_steps=1500, learning_rate=3e-3, batch_size=32, buffer_size=2000,
                       learning_starts=100, gamma=0.9, target_update_interval=50,
                       train_freq=4, gradient_steps=1, exploration_fraction=0.3,
                       eval_interval=500, eval_episodes=2, n_step=3)
    result = train_dqn(QNetwork(1, 2, tiny_network), corridor, config, seed=0,
                       eval_seeds=[10, 11])
    evals = result.history[result.history["metric"] == "eval_return"]["value"]
    assert evals.max() == -2.0


def test_warm_start_episodes_look_ahead_and_relabelled_rows_stand_alone():
    obs = np.arange(6, dtype=np.float32)[:, None]
    warm = WarmStart(obs, np.zeros(6, np.int64), -np.ones(6, np.float32), obs + 1,
                     np.zeros(6, bool), episode_id=np.array([0, 0, 0, 0, -1, -2]))
    bootstrap = warm.bootstrap(gamma=0.5, n=2)
    assert bootstrap.next_obs[:, 0].tolist() == [2.0, 3.0, 4.0, 4.0, 5.0, 6.0]
    assert bootstrap.discount.tolist() == [0.25, 0.25, 0.25, 0.5, 0.5, 0.5]
    assert bootstrap.reward.tolist() == [-1.5, -1.5, -1.5, -1.0, -1.0, -1.0]
