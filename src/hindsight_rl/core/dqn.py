"""Double DQN with optional warm start, frozen parts and the hindsight return-to-go loss.

One loop serves pretraining, fine-tuning and the from-scratch control, so the three differ
only in what they are given, never in how they learn.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from hindsight_rl.core.config import DQNConfig, EnvConfig
from hindsight_rl.core.envs import make_env
from hindsight_rl.core.evaluation import GreedyEvaluator
from hindsight_rl.core.hindsight import returns_to_go
from hindsight_rl.core.networks import QNetwork, set_frozen, trainable_parameters
from hindsight_rl.core.replay import Batch, ReplayBuffer
from hindsight_rl.core.rollouts import q_function

logger = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; nothing from it should be saved."""


@dataclass(frozen=True)
class WarmStart:
    """Transitions that fill the replay buffer before the first online step."""

    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    return_to_go: np.ndarray | None = None
    rtg_valid: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.action)


@dataclass(frozen=True)
class TrainResult:
    network: QNetwork
    history: pd.DataFrame
    """Long table: ``env_step``, ``metric`` (episode_return, eval_return, loss), ``value``."""
    env_steps: int


def seed_everything(seed: int) -> np.random.Generator:
    """One explicit seeding block: torch for initial weights, numpy for everything else."""
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def epsilon_at(step: int, config: DQNConfig) -> float:
    """Linear decay from the initial to the final ε over ``exploration_fraction``."""
    progress = min(1.0, step / (config.exploration_fraction * config.total_steps))
    return config.exploration_initial_eps + progress * (
        config.exploration_final_eps - config.exploration_initial_eps)


def td_targets(batch: Batch, online: QNetwork, target: QNetwork, gamma: float,
               double_dqn: bool) -> torch.Tensor:
    """``r + γ (1 − terminated) Q_target(s', a*)``; a truncated step keeps its bootstrap."""
    with torch.no_grad():
        next_q = target(batch.next_obs)
        if double_dqn:
            best = online(batch.next_obs).argmax(dim=1, keepdim=True)
            next_value = next_q.gather(1, best).squeeze(1)
        else:
            next_value = next_q.max(dim=1).values
        return batch.reward + gamma * (1.0 - batch.terminated) * next_value


def dqn_loss(batch: Batch, online: QNetwork, target: QNetwork, config: DQNConfig) -> torch.Tensor:
    """Huber TD loss plus β·mean((G_t − Q(s_t,a_t))²) over rows with an exact return-to-go
    (only the part of G_t above Q with ``rtg_loss: lower_bound``)."""
    q_taken = online(batch.obs).gather(1, batch.action).squeeze(1)
    loss = F.smooth_l1_loss(q_taken, td_targets(batch, online, target, config.gamma,
                                                config.double_dqn))
    if config.rtg_coef > 0:
        shortfall = batch.return_to_go - q_taken
        if config.rtg_loss == "lower_bound":
            shortfall = shortfall.clamp(min=0.0)
        squared = shortfall.pow(2) * batch.rtg_valid
        loss = loss + config.rtg_coef * squared.sum() / batch.rtg_valid.sum().clamp(min=1.0)
    return loss


def build_optimizer(network: QNetwork, learning_rate: float) -> torch.optim.Adam:
    """Adam over the trainable parameters only: frozen parts never reach the optimiser."""
    return torch.optim.Adam(trainable_parameters(network), lr=learning_rate)


class _History:
    """Collects (env_step, metric, value) rows without touching the hot loop much."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str, float]] = []

    def add(self, step: int, metric: str, value: float) -> None:
        self.rows.append((step, metric, float(value)))

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows, columns=["env_step", "metric", "value"])
        return frame.astype({"env_step": "int64", "value": "float64"})


def train_dqn(network: QNetwork, env_config: EnvConfig, config: DQNConfig, seed: int,
              eval_seeds: Sequence[int], warm_start: WarmStart | None = None,
              frozen: Sequence[str] = (), unfreeze_after_steps: int | None = None,
              label: str = "dqn") -> TrainResult:
    """Train ``network`` in place for ``config.total_steps`` env steps (warm start included).

    Args:
        network: initial weights (fresh, or transferred from a pretrained policy).
        env_config: the task to train on.
        config: DQN hyperparameters.
        seed: seeds the environment, exploration and replay sampling.
        eval_seeds: seeds of the greedy episodes behind each learning-curve point.
        warm_start: transitions to preload; they count against ``total_steps``.
        frozen: parts kept out of the optimiser.
        unfreeze_after_steps: env step at which ``frozen`` parts start training.
        label: name used in log lines.
    """
    rng = np.random.default_rng(seed)
    env = make_env(env_config)
    env.action_space.seed(seed)
    evaluator = GreedyEvaluator(env_config, eval_seeds)
    set_frozen(network, frozen)
    optimizer = build_optimizer(network, config.learning_rate)
    target = copy.deepcopy(network)
    target.requires_grad_(False)
    buffer = ReplayBuffer(config.buffer_size, network.obs_dim, rng)
    history = _History()
    q_values = q_function(network)

    step = 0
    if warm_start is not None and len(warm_start):
        buffer.extend(warm_start.obs, warm_start.action, warm_start.reward, warm_start.next_obs,
                      warm_start.terminated, warm_start.return_to_go, warm_start.rtg_valid)
        step = min(len(warm_start), config.total_steps)

    best_return, best_state = -np.inf, None

    def evaluate() -> None:
        nonlocal best_return, best_state
        returns = evaluator.run(q_values)
        history.add(step, "eval_return", returns.mean())
        if returns.mean() >= best_return:
            best_return, best_state = returns.mean(), copy.deepcopy(network.state_dict())
        logger.info("%s: step %d/%d, greedy return %.1f ± %.1f", label, step,
                    config.total_steps, returns.mean(), returns.std())

    evaluate()
    obs, _ = env.reset(seed=seed)
    still_frozen = bool(frozen)
    episode_slots: list[int] = []
    episode_rewards: list[float] = []
    last_finite_loss = float("nan")
    while step < config.total_steps:
        if rng.random() < epsilon_at(step, config):
            action = int(rng.integers(network.n_actions))
        else:
            action = int(q_values(obs[None])[0].argmax())
        next_obs, reward, terminated, truncated, _ = env.step(action)
        episode_slots.append(buffer.add(obs, action, reward, next_obs, terminated))
        episode_rewards.append(float(reward))
        step += 1
        if terminated or truncated:
            rewards = np.asarray(episode_rewards, np.float32)
            buffer.label(episode_slots, returns_to_go(rewards, np.zeros(len(rewards)),
                                                      config.gamma), valid=terminated)
            history.add(step, "episode_return", rewards.sum())
            episode_slots, episode_rewards = [], []
            obs, _ = env.reset()
        else:
            obs = next_obs

        if still_frozen and unfreeze_after_steps is not None and step >= unfreeze_after_steps:
            set_frozen(network, frozen, frozen=False)
            optimizer.add_param_group({"params": [p for name in frozen
                                                  for p in network.part(name).parameters()]})
            still_frozen = False
        if step % config.train_freq == 0 and buffer.size >= config.learning_starts:
            loss = _train_burst(buffer, network, target, optimizer, config)
            if not np.isfinite(loss):
                raise NonFiniteLossError(f"{label}: loss became {loss} at env step {step}; "
                                         f"last finite loss {last_finite_loss}")
            last_finite_loss = loss
            history.add(step, "loss", loss)
        if step % config.target_update_interval == 0:
            target.load_state_dict(network.state_dict())
        if step % config.eval_interval == 0 or step == config.total_steps:
            evaluate()
    env.close()
    evaluator.close()
    if config.keep == "best" and best_state is not None:
        network.load_state_dict(best_state)
    set_frozen(network, frozen, frozen=False)
    return TrainResult(network=network, history=history.frame(), env_steps=step)


def _train_burst(buffer: ReplayBuffer, online: QNetwork, target: QNetwork,
                 optimizer: torch.optim.Optimizer, config: DQNConfig) -> float:
    """``gradient_steps`` updates; returns their mean loss with a single host sync."""
    total = torch.zeros(())
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    for _ in range(config.gradient_steps):
        loss = dqn_loss(buffer.sample(config.batch_size), online, target, config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
        optimizer.step()
        total += loss.detach()
    return float(total) / config.gradient_steps
