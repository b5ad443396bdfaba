import numpy as np
import torch

from hindsight_rl.core.config import (
    DQNConfig,
    FinetuneConfig,
    GoalConfig,
    SACConfig,
    fine_tuning,
)
from hindsight_rl.core.hindsight import label_hindsight
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.policy_file import Policy
from hindsight_rl.core.training import finetune_from, warm_start_from_table
from hindsight_rl.core.trajectories import transitions_from_lists
from tests.conftest import hindsight_table

GOAL = GoalConfig(achieved=(0,), desired=(3.0,), reached="at_least", reached_reward=0.0)


def _walk(positions: list[float]):
    """One episode of a 1-d walk with obs = [position, desired goal]."""
    n = len(positions) - 1
    reached = [p >= 3.0 for p in positions[1:]]
    return transitions_from_lists(
        episode_id=np.zeros(n), t=np.arange(n),
        obs=[[p, 3.0] for p in positions[:-1]], action=np.ones(n),
        reward=[0.0 if r else -1.0 for r in reached],
        next_obs=[[p, 3.0] for p in positions[1:]], terminated=reached,
        truncated=np.zeros(n, bool))


def test_warm_start_counts_only_env_steps_and_keeps_copies_one_step():
    table = label_hindsight(_walk([0.0, 1.0, 2.0, 3.0]), 0.5, "terminated", 10, GOAL,
                            her_k=2, seed=0)
    warm = warm_start_from_table(table)
    assert warm.env_steps == 3 and len(warm) == 9
    bootstrap = warm.bootstrap(gamma=0.5, n=3)
    assert bootstrap.discount[:3].tolist() == [0.0, 0.0, 0.0]  # the episode ends in 3 steps
    assert bootstrap.next_obs[0].tolist() == [3.0, 3.0]
    copies = table["relabeled"].to_numpy()
    one_step = np.where(warm.terminated[copies], 0.0, 0.5)
    assert bootstrap.discount[copies].tolist() == one_step.tolist()
    assert bootstrap.next_obs[copies].tolist() == warm.next_obs[copies].tolist()


def _fine_tuned_head(corridor, tiny_network, tiny_dqn, finetune: FinetuneConfig
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """The transferred head and the head after fine-tuning on the corridor."""
    torch.manual_seed(0)
    source = Policy(network=QNetwork(1, 2, tiny_network), env=corridor, gamma=0.99)
    [(policy, _)] = finetune_from(source, corridor, tiny_dqn, finetune, (0,),
                                  hindsight_table(corridor, 50), [7], label="t")
    return source.network.head.weight.detach(), policy.network.head.weight.detach()


def test_the_fine_tuned_arm_learns_at_its_own_rate(corridor, tiny_network, tiny_dqn):
    before, after = _fine_tuned_head(corridor, tiny_network, tiny_dqn,
                                     FinetuneConfig(frozen=()))
    assert (after - before).abs().max() > 1e-3, "dqn.learning_rate moves the head"
    before, after = _fine_tuned_head(corridor, tiny_network, tiny_dqn,
                                     FinetuneConfig(frozen=(), learning_rate=1e-9))
    assert (after - before).abs().max() < 1e-5, "finetune.learning_rate barely does"


def test_fine_tuning_settings_replace_only_what_they_set():
    dqn = DQNConfig(learning_rate=5e-4, exploration_initial_eps=1.0, exploration_final_eps=0.05)
    tuned = fine_tuning(dqn, FinetuneConfig(learning_rate=1e-4, exploration_initial_eps=0.3))
    assert (tuned.learning_rate, tuned.exploration_initial_eps) == (1e-4, 0.3)
    assert tuned.model_copy(update={"learning_rate": 5e-4,
                                    "exploration_initial_eps": 1.0}) == dqn
    assert fine_tuning(dqn, FinetuneConfig()) == dqn
    assert fine_tuning(SACConfig(), FinetuneConfig(learning_rate=1e-4)).learning_rate == 1e-4
