import logging

import numpy as np
import pandas as pd
import pytest
import torch

from hindsight_rl.core import dqn, evaluation
from hindsight_rl.core.config import DQNConfig, FinetuneConfig, GoalConfig, NetworkConfig
from hindsight_rl.core.dqn import (
    Member,
    NonFiniteLossError,
    TrainResult,
    WarmStart,
    epsilon_at,
    stalled,
    td_targets,
    train_dqn,
)
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.replay import Batch, ReplayBuffer


def train_one(network: QNetwork, env, config: DQNConfig, seed: int = 0, eval_seeds=(10,),
              warm_start: WarmStart | None = None, **options) -> TrainResult:
    """One seed trained alone."""
    return train_dqn([Member(network, seed, warm_start)], env, config, eval_seeds,
                     **options)[0]


def _batch(discount: float) -> Batch:
    """One transition of one member: tensors with a leading member axis."""
    one = torch.ones(1, 1)
    return Batch(obs=torch.zeros(1, 1, 1), action=torch.zeros(1, 1, 1, dtype=torch.int64),
                 bootstrap_reward=one, bootstrap_obs=torch.ones(1, 1, 1),
                 discount=one * discount, return_to_go=one, rtg_valid=one)


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


def test_frozen_trunk_is_bit_identical_after_training(corridor, tiny_network, tiny_dqn):
    torch.manual_seed(0)
    network = QNetwork(1, 2, tiny_network)
    trunk_before = {k: v.clone() for k, v in network.trunk.state_dict().items()}
    head_before = network.head.weight.clone()
    result = train_one(network, corridor, tiny_dqn,
                       finetune=FinetuneConfig(frozen=["trunk"], unfreeze_patience=None))
    for key, tensor in result.network.trunk.state_dict().items():
        assert torch.equal(tensor, trunk_before[key])
    assert not torch.equal(result.network.head.weight, head_before)


def test_unfreezing_lets_the_trunk_train(corridor, tiny_network, tiny_dqn):
    torch.manual_seed(0)
    network = QNetwork(1, 2, tiny_network)
    before = network.trunk[0].weight.clone()
    config = tiny_dqn.model_copy(update={"keep": "last"})
    result = train_one(network, corridor, config,
                       finetune=FinetuneConfig(frozen=["trunk"], unfreeze_after_steps=100))
    assert not torch.equal(result.network.trunk[0].weight, before)


@pytest.mark.parametrize(("curve", "patience", "threshold", "expected"), [
    ([-5.0, -5.0, -5.0], 2, -2.0, True),     # no new best in the last two points
    ([-5.0, -5.0], 2, -2.0, False),          # too few points to tell
    ([-5.0, -4.0, -5.0], 2, -2.0, False),    # the best is one of the last two
    ([-3.0, -5.0, -3.0, -4.0], 2, -2.0, True),  # a tie is no new best
    ([-1.0, -5.0, -5.0], 2, -2.0, False),    # solved: its frozen parts are kept
    ([-1.0, -5.0, -5.0], 2, None, True),     # no threshold: only the curve decides
])
def test_a_curve_stalls_after_patience_points_without_a_new_best_short_of_threshold(
        curve, patience, threshold, expected):
    assert stalled(curve, patience, threshold) == expected


def _always_stays(network_config: NetworkConfig) -> QNetwork:
    """A network that prefers action 0 (stay) by far everywhere: the corridor's worst policy,
    which a tiny learning rate cannot change within a test."""
    torch.manual_seed(0)
    network = QNetwork(1, 2, network_config)
    with torch.no_grad():
        network.head.weight.zero_()
        network.head.bias.copy_(torch.tensor([[1.0, 0.0]]))
    return network


@pytest.mark.parametrize("patience", [2, None])
def test_a_stalled_curve_unfreezes_the_frozen_parts_at_the_decided_step(
        corridor, tiny_network, tiny_dqn, caplog, patience):
    network = _always_stays(tiny_network)
    before = network.trunk[0].weight.clone()
    config = tiny_dqn.model_copy(update={"keep": "last", "learning_rate": 1e-6})
    with caplog.at_level(logging.INFO, logger="hindsight_rl.core.dqn"):
        result = train_one(network, corridor, config, finetune=FinetuneConfig(
            frozen=["trunk"], unfreeze_patience=patience))
    curve = result.history[result.history["metric"] == "eval_return"]
    assert (curve["value"] == -5.0).all()  # points at steps 0, 100, 200, 300
    unfrozen = [r.getMessage() for r in caplog.records if "unfrozen" in r.getMessage()]
    if patience is None:
        assert unfrozen == [] and result.frozen == ("trunk",)
        assert torch.equal(result.network.trunk[0].weight, before)
    else:
        assert unfrozen == ["dqn seed 0: trunk unfrozen at env step 200, 2 learning-curve "
                            "points without a new best"]
        assert result.frozen == () and not torch.equal(result.network.trunk[0].weight, before)


def test_training_is_reproducible(corridor, tiny_network, tiny_dqn):
    def run() -> dict[str, torch.Tensor]:
        torch.manual_seed(3)
        return train_one(QNetwork(1, 2, tiny_network), corridor, tiny_dqn,
                         seed=3).network.state_dict()

    first, second = run(), run()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_dqn_learns_the_corridor(corridor, tiny_network):
    torch.manual_seed(0)
    config = DQNConfig(total_steps=1500, learning_rate=3e-3, batch_size=32, buffer_size=2000,
                       learning_starts=100, gamma=0.9, target_update_interval=50,
                       train_freq=4, gradient_steps=1, exploration_fraction=0.3,
                       eval_interval=500, eval_episodes=2)
    result = train_one(QNetwork(1, 2, tiny_network), corridor, config, eval_seeds=[10, 11])
    evals = result.history[result.history["metric"] == "eval_return"]["value"]
    assert evals.max() == -2.0  # three steps right: -1, -1, 0


def test_unfreezing_before_the_first_online_step_still_happens(corridor, tiny_network, tiny_dqn):
    torch.manual_seed(0)
    network = QNetwork(1, 2, tiny_network)
    before = network.trunk[0].weight.clone()
    obs = np.zeros((50, 1), np.float32)
    warm = WarmStart(obs, np.ones(50, np.int64), -np.ones(50, np.float32), obs + 1,
                     np.zeros(50, bool))
    config = tiny_dqn.model_copy(update={"keep": "last"})
    result = train_one(network, corridor, config, warm_start=warm,  # step starts at 50
                       finetune=FinetuneConfig(frozen=["trunk"], unfreeze_after_steps=10))
    assert not torch.equal(result.network.trunk[0].weight, before)


def _poison_after(monkeypatch, calls_before: int, poison):
    """Make ``dqn_loss`` call ``poison(loss, network)`` once ``calls_before`` calls passed."""
    real, calls = dqn.dqn_loss, [0]

    def poisoned(batch, online, target, config, guidance=None):
        calls[0] += 1
        loss = real(batch, online, target, config, guidance)
        if calls[0] > calls_before:
            loss = poison(loss, online)
        return loss

    monkeypatch.setattr(dqn, "dqn_loss", poisoned)


def _nan_loss(loss, network):
    return loss * float("nan")


def _inf_weight(loss, network):
    with torch.no_grad():
        network.head.bias[0, 0, 0] = float("inf")
    return loss


# Bursts of two gradient steps at env steps 32, 48, 64: the third one is poisoned, the
# weights only on its last gradient step so that its loss stays finite.
@pytest.mark.parametrize(("poison", "calls_before", "what"), [
    (_nan_loss, 4, "loss became nan"), (_inf_weight, 5, "weights became non-finite")])
def test_non_finite_training_stops_naming_step_and_last_finite_loss(
        monkeypatch, corridor, tiny_network, tiny_dqn, poison, calls_before, what):
    _poison_after(monkeypatch, calls_before, poison)
    network = QNetwork(1, 2, tiny_network)
    with pytest.raises(NonFiniteLossError,
                       match=rf"run seed 0: {what} at env step 64; last finite loss \d+\.\d+"):
        train_one(network, corridor, tiny_dqn, eval_seeds=[0], label="run")


def test_training_stops_at_the_first_curve_point_at_the_threshold(corridor, tiny_network):
    torch.manual_seed(0)
    config = DQNConfig(total_steps=1500, learning_rate=3e-3, batch_size=32, buffer_size=2000,
                       learning_starts=100, gamma=0.9, target_update_interval=50,
                       train_freq=4, gradient_steps=1, exploration_fraction=0.3,
                       eval_interval=100, eval_episodes=2, stop_on_threshold=True)
    result = train_one(QNetwork(1, 2, tiny_network), corridor, config, eval_seeds=[10, 11])
    evals = result.history[result.history["metric"] == "eval_return"]
    assert result.env_steps < config.total_steps
    assert evals["env_step"].iloc[-1] == result.env_steps
    assert evals["value"].iloc[-1] == -2.0 and (evals["value"].iloc[:-1] < -2.0).all()


def test_relabelled_copies_join_the_buffer_without_counting_as_env_steps(
        corridor, tiny_network, tiny_dqn, monkeypatch):
    goal_corridor = corridor.model_copy(update={"goal": GoalConfig(achieved=(0,), desired=(3.0,),
                                                                    reached_reward=0.0)})
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
        return train_one(QNetwork(2, 2, tiny_network), goal_corridor, tiny_dqn, her_k=3)

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
    config = tiny_dqn.model_copy(update={"n_step": 3, "gamma": 0.9})
    train_one(QNetwork(1, 2, tiny_network), corridor, config)
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
    result = train_one(QNetwork(1, 2, tiny_network), corridor, config, eval_seeds=[10, 11])
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


def _members(seeds, network_config, warm_start=None) -> list[Member]:
    members = []
    for seed in seeds:
        torch.manual_seed(seed)
        members.append(Member(QNetwork(1, 2, network_config), seed, warm_start))
    return members


@pytest.mark.parametrize("options", [
    {}, {"frozen": ["trunk"], "rtg_coef": 0.1, "rtg_loss": "lower_bound", "n_step": 3}])
def test_a_seed_trains_to_the_same_weights_alone_or_beside_others(
        corridor, tiny_network, tiny_dqn, options):
    finetune = FinetuneConfig(frozen=options.pop("frozen", ()))
    config = tiny_dqn.model_copy(update=options)
    alone = train_dqn(_members([1], tiny_network), corridor, config, [10],
                      finetune=finetune)[0]
    together = train_dqn(_members([0, 1, 2], tiny_network), corridor, config, [10],
                         finetune=finetune)
    expected, got = alone.network.state_dict(), together[1].network.state_dict()
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    pd.testing.assert_frame_equal(alone.history, together[1].history)
    assert not torch.equal(together[0].network.head.weight, together[1].network.head.weight)


def test_members_with_warm_starts_of_different_lengths_are_refused(corridor, tiny_network,
                                                                   tiny_dqn):
    def warm(rows: int) -> WarmStart:
        obs = np.zeros((rows, 1), np.float32)
        return WarmStart(obs, np.ones(rows, np.int64), -np.ones(rows, np.float32), obs + 1,
                         np.zeros(rows, bool))

    short, long = _members([0], tiny_network, warm(10)), _members([1], tiny_network, warm(20))
    with pytest.raises(ValueError, match="warm starts count different env steps"):
        train_dqn(short + long, corridor, tiny_dqn, [10])


def test_members_stopping_on_the_threshold_train_one_after_another(corridor, tiny_network):
    config = DQNConfig(total_steps=1500, learning_rate=3e-3, batch_size=32, buffer_size=2000,
                       learning_starts=100, gamma=0.9, target_update_interval=50,
                       train_freq=4, gradient_steps=1, exploration_fraction=0.3,
                       eval_interval=100, eval_episodes=2, stop_on_threshold=True)
    results = train_dqn(_members([0, 1], tiny_network), corridor, config, [10, 11])
    alone = train_dqn(_members([1], tiny_network), corridor, config, [10, 11])[0]
    assert results[1].env_steps == alone.env_steps < config.total_steps
    pd.testing.assert_frame_equal(results[1].history, alone.history)


def test_the_novelty_bonus_shapes_the_replay_rewards_not_the_recorded_returns(
        corridor, tiny_network, tiny_dqn, stored_rewards):
    config = tiny_dqn.model_copy(update={"novelty_coef": 0.25})
    history = train_one(QNetwork(1, 2, tiny_network), corridor, config).history
    returns = history[history["metric"] == "episode_return"]["value"]
    # The corridor pays -1 a step and 0 at its end: returns are exactly whole numbers (the
    # env's rewards, not the stored ones less the bonus, which leaves float32 rounding that
    # reads as a success), rewards don't.
    assert len(returns) and (returns == returns.round()).all() and (returns <= 0).all()
    bonuses = np.asarray(stored_rewards) - np.round(stored_rewards)
    assert bonuses.max() == pytest.approx(0.25)  # the first visit to a cell
    assert (bonuses > 0).all() and bonuses.min() < 0.25 / 2  # later visits earn less


def _stays_by_a_hair() -> QNetwork:
    """A network that ranks staying (action 0) first by 0.001 everywhere: its argmax never
    leaves the corridor's start, while draws among its near-tied actions do."""
    network = _constant_network(-1.0)
    with torch.no_grad():
        network.head.bias[0, 0, 1] = -1.001
    return network


@pytest.mark.parametrize(("fractions", "expected"), [((0.01,), 0.01), ((), 0.0)])
def test_a_curve_point_plays_the_temperature_that_scores_higher(corridor, tiny_dqn,
                                                                fractions, expected):
    config = tiny_dqn.model_copy(update={"learning_starts": 10_000, "total_steps": 100,
                                         "acting_temperatures": fractions})
    result = train_one(_stays_by_a_hair(), corridor, config, eval_seeds=range(10, 30))
    curve = result.history.query("metric == 'eval_return'").value
    assert result.acting_temperature == pytest.approx(expected)  # 0.01 × mean |max Q| of 1
    assert (curve > -5.0).all() if fractions else (curve == -5.0).all()


def test_the_kept_network_keeps_its_points_temperature(corridor, tiny_network, tiny_dqn):
    run = dqn._StackRun(_members([0], tiny_network), dqn.RunSpec(corridor, tiny_dqn, [10]))
    member = run.members[0]
    for temperature, mean in [(0.5, -3.0), (0.0, -4.0)]:
        member.played_temperature = temperature
        member.evaluate(np.array([mean]), run.online, 100, 300)
    assert run.results()[0].acting_temperature == 0.5
    last = run.members[0].result(run.online, 300, tiny_dqn.model_copy(update={"keep": "last"}),
                                 ())
    assert last.acting_temperature == 0.0


def test_an_argmax_at_the_threshold_tries_no_temperature(corridor, tiny_dqn, monkeypatch):
    network = _constant_network(-1.0)
    with torch.no_grad():
        network.head.bias[0, 0, 0] = -1.001  # the argmax walks: -2, the corridor's threshold
    played = []
    monkeypatch.setattr(evaluation, "boltzmann",
                        lambda *args: played.append(args) or evaluation.greedy(args[0]))
    config = tiny_dqn.model_copy(update={"learning_starts": 10_000, "total_steps": 100})
    result = train_one(network, corridor, config, eval_seeds=range(10, 13))
    assert (result.history.query("metric == 'eval_return'").value == -2.0).all()
    assert not played and result.acting_temperature == 0.0
