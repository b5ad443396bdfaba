"""Double DQN with optional warm start, frozen parts, n-step targets and the hindsight
return-to-go loss.

One loop serves pretraining, fine-tuning and the from-scratch control, so the three differ
only in what they are given, never in how they learn.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from hindsight_rl.core.checkpoints import (
    Checkpoint,
    Checkpoints,
    load_optimizer_state,
    optimizer_state,
    prefixed,
    run_key,
    unprefixed,
)
from hindsight_rl.core.config import DQNConfig, EnvConfig
from hindsight_rl.core.envs import env_info, make_env
from hindsight_rl.core.errors import HindsightRLError
from hindsight_rl.core.evaluation import GreedyEvaluator
from hindsight_rl.core.hindsight import (
    Bootstrap,
    n_step_bootstrap,
    relabel_future,
    returns_to_go,
)
from hindsight_rl.core.networks import QNetwork, set_frozen, trainable_parameters
from hindsight_rl.core.progress import StepProgress
from hindsight_rl.core.replay import Batch, ReplayBuffer
from hindsight_rl.core.rollouts import q_function

logger = logging.getLogger(__name__)


class NonFiniteLossError(HindsightRLError, RuntimeError):
    """Training produced a non-finite loss or weights; nothing from it is saved."""


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
    env_steps: int | None = None
    """Rows that were real environment steps (relabelled copies are not); all by default."""
    episode_id: np.ndarray | None = None
    """Runs of equal ids are episodes in step order, whose rows get n-step targets; rows
    that stand alone (relabelled copies, or all of them when None) keep one-step ones."""

    def __len__(self) -> int:
        return len(self.action)

    def bootstrap(self, gamma: float, n: int) -> Bootstrap:
        """The rows' TD targets: n steps ahead within each episode."""
        episodes = np.arange(len(self)) if self.episode_id is None else self.episode_id
        return n_step_bootstrap(self.reward, self.next_obs, self.terminated, episodes, gamma, n)

    @property
    def steps_taken(self) -> int:
        return len(self) if self.env_steps is None else self.env_steps


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


def td_targets(batch: Batch, online: QNetwork, target: QNetwork,
               double_dqn: bool) -> torch.Tensor:
    """``r + discount · Q_target(s', a*)``: ``discount`` is ``γ^m`` for an m-step target and
    0 after a termination; a truncated episode keeps its bootstrap."""
    with torch.no_grad():
        next_q = target(batch.next_obs)
        if double_dqn:
            best = online(batch.next_obs).argmax(dim=1, keepdim=True)
            next_value = next_q.gather(1, best).squeeze(1)
        else:
            next_value = next_q.max(dim=1).values
        return batch.reward + batch.discount * next_value


def dqn_loss(batch: Batch, online: QNetwork, target: QNetwork, config: DQNConfig) -> torch.Tensor:
    """Huber TD loss plus β·mean((G_t − Q(s_t,a_t))²) over rows with an exact return-to-go
    (only the part of G_t above Q with ``rtg_loss: lower_bound``)."""
    q_taken = online(batch.obs).gather(1, batch.action).squeeze(1)
    loss = F.smooth_l1_loss(q_taken, td_targets(batch, online, target, config.double_dqn))
    if config.rtg_coef > 0:
        shortfall = batch.return_to_go - q_taken
        if config.rtg_loss == "lower_bound":
            shortfall = shortfall.clamp(min=0.0)
        squared = shortfall.pow(2) * batch.rtg_valid
        loss = loss + config.rtg_coef * squared.sum() / batch.rtg_valid.sum().clamp(min=1.0)
    return loss


def weight_copier(source: QNetwork, destination: QNetwork) -> Callable[[], None]:
    """The hard target update as one fused copy between tensor lists made once: rebuilding
    state dicts for ``load_state_dict`` costs twice as much, every few env steps (every 10
    on CartPole). The lists share storage with both networks, so they stay current."""
    sources = list(source.state_dict().values())
    destinations = list(destination.state_dict().values())

    def copy_weights() -> None:
        with torch.no_grad():
            torch._foreach_copy_(destinations, sources)

    return copy_weights


def clip_grad_norm(parameters: list[torch.Tensor], max_norm: float) -> None:
    """``torch.nn.utils.clip_grad_norm_(..., foreach=True)``'s arithmetic, bit for bit, without
    its per-call dispatch over devices and norm types: 0.11 instead of 0.22 ms an update here."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    torch._foreach_mul_(grads, torch.clamp(max_norm / (total + 1e-6), max=1.0))


def replay_capacity(config: DQNConfig, her_k: int) -> int:
    """Room for ``buffer_size`` env steps and their relabelled copies: an arm with HER
    remembers as many env steps as one without, instead of five times fewer (k = 4)."""
    return config.buffer_size * (1 + her_k)


def build_optimizer(network: QNetwork, learning_rate: float) -> torch.optim.Adam:
    """Adam over the trainable parameters only: frozen parts never reach the optimiser.

    The fused kernel updates every tensor in one call instead of a loop over them: the
    step drops from about 0.5 to 0.3 ms on the 256-256 network here (benchmarks/RESULTS.md);
    the same update up to float rounding.
    """
    return torch.optim.Adam(trainable_parameters(network), lr=learning_rate, fused=True)


class _History:
    """Collects (env_step, metric, value) rows without touching the hot loop much."""

    METRICS = ("episode_return", "eval_return", "loss")

    def __init__(self) -> None:
        self.rows: list[tuple[int, str, float]] = []

    def add(self, step: int, metric: str, value: float) -> None:
        self.rows.append((step, metric, float(value)))

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows, columns=["env_step", "metric", "value"])
        return frame.astype({"env_step": "int64", "value": "float64"})

    def tensors(self) -> dict[str, torch.Tensor]:
        steps, metrics, values = zip(*self.rows, strict=True) if self.rows else ((), (), ())
        return {"env_step": torch.tensor(steps, dtype=torch.int64),
                "metric": torch.tensor([self.METRICS.index(m) for m in metrics],
                                       dtype=torch.int64),
                "value": torch.tensor(values, dtype=torch.float64)}

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        self.rows = [(int(step), self.METRICS[int(metric)], float(value))
                     for step, metric, value in zip(tensors["env_step"], tensors["metric"],
                                                    tensors["value"], strict=True)]


@dataclass
class _Run:
    """Everything the training loop changes: exactly what a checkpoint holds."""

    network: QNetwork
    target: QNetwork
    optimizer: torch.optim.Optimizer
    buffer: ReplayBuffer
    rng: np.random.Generator
    history: _History
    step: int = 0
    best_return: float = -np.inf
    best_state: dict[str, torch.Tensor] | None = None
    unfrozen: bool = False
    last_finite_loss: float = float("nan")

    def unfreeze(self, parts: Sequence[str]) -> None:
        """Frozen parts start training: gradients on, and a param group of their own."""
        set_frozen(self.network, parts, frozen=False)
        self.optimizer.add_param_group({"params": [p for name in parts
                                                   for p in self.network.part(name).parameters()]})
        self.unfrozen = True

    def checkpoint(self, env_rng_state: dict[str, Any]) -> Checkpoint:
        optimizer_tensors, groups = optimizer_state(self.optimizer)
        tensors = {**prefixed("online", self.network.state_dict()),
                   **prefixed("target", self.target.state_dict()),
                   **prefixed("optimizer", optimizer_tensors),
                   **prefixed("replay", {k: torch.from_numpy(v)
                                         for k, v in self.buffer.arrays().items()}),
                   **prefixed("history", self.history.tensors()),
                   **({} if self.best_state is None else prefixed("best", self.best_state))}
        document = {"step": self.step, "best_return": self.best_return,
                    "unfrozen": self.unfrozen, "last_finite_loss": self.last_finite_loss,
                    "replay_position": self.buffer.position, "optimizer_groups": groups,
                    "rng": self.rng.bit_generator.state, "env_rng": env_rng_state}
        return Checkpoint(tensors, document)

    def restore(self, checkpoint: Checkpoint, frozen: Sequence[str]) -> dict[str, Any]:
        """Load ``checkpoint`` into this run; returns the training env's RNG state."""
        tensors, document = checkpoint.tensors, checkpoint.document
        if document["unfrozen"] and not self.unfrozen:
            self.unfreeze(frozen)
        self.network.load_state_dict(unprefixed("online", tensors))
        self.target.load_state_dict(unprefixed("target", tensors))
        load_optimizer_state(self.optimizer, unprefixed("optimizer", tensors),
                             document["optimizer_groups"])
        self.buffer.restore({k: v.numpy() for k, v in unprefixed("replay", tensors).items()},
                            document["replay_position"])
        self.history.restore(unprefixed("history", tensors))
        self.best_state = unprefixed("best", tensors) or None
        self.step, self.best_return = document["step"], document["best_return"]
        self.last_finite_loss = document["last_finite_loss"]
        self.rng.bit_generator.state = document["rng"]
        return document["env_rng"]


def train_dqn(network: QNetwork, env_config: EnvConfig, config: DQNConfig, seed: int,
              eval_seeds: Sequence[int], warm_start: WarmStart | None = None,
              frozen: Sequence[str] = (), unfreeze_after_steps: int | None = None,
              label: str = "dqn", checkpoints: Checkpoints | None = None,
              her_k: int = 0) -> TrainResult:
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
        label: name used in log lines and checkpoint file names.
        checkpoints: where to save the run's state every ``interval`` env steps (at the next
            episode end) and resume it from; the same run ends with the same weights whether
            or not it was interrupted.
        her_k: relabelled copies of each transition added to the buffer when its episode
            ends (HER "future", ``env_config.goal``'s reward); 0 for none.
    """
    key = None if checkpoints is None else _run_key(network, env_config, config, seed,
                                                    eval_seeds, warm_start, frozen,
                                                    unfreeze_after_steps, her_k)
    rng = np.random.default_rng(seed)
    env = make_env(env_config)
    env.action_space.seed(seed)
    evaluator = GreedyEvaluator(env_config, eval_seeds)
    set_frozen(network, frozen)
    target = copy.deepcopy(network)
    target.requires_grad_(False)
    buffer = ReplayBuffer(replay_capacity(config, her_k), network.obs_dim, rng, config.gamma)
    run = _Run(network, target, build_optimizer(network, config.learning_rate), buffer, rng,
               _History())
    q_values = q_function(network)
    update_target = weight_copier(network, target)
    stop_at = env_info(env_config).reward_threshold if config.stop_on_threshold else None

    if warm_start is not None and len(warm_start):
        run.buffer.extend(warm_start.obs, warm_start.action, warm_start.reward,
                          warm_start.next_obs, warm_start.terminated, warm_start.return_to_go,
                          warm_start.rtg_valid, warm_start.bootstrap(config.gamma, config.n_step))
        run.step = min(warm_start.steps_taken, config.total_steps)

    def evaluate() -> bool:
        """Add a learning-curve point; True once it reaches ``stop_at``."""
        returns = evaluator.run(q_values)
        run.history.add(run.step, "eval_return", returns.mean())
        if returns.mean() >= run.best_return:
            run.best_return = float(returns.mean())
            run.best_state = copy.deepcopy(network.state_dict())
        logger.info("%s: step %d/%d, greedy return %.1f ± %.1f", label, run.step,
                    config.total_steps, returns.mean(), returns.std())
        return stop_at is not None and returns.mean() >= stop_at

    obs, _ = env.reset(seed=seed)
    saved = None if checkpoints is None else checkpoints.load(key, label)
    solved = False
    if saved is None:
        solved = evaluate()
    else:
        env.unwrapped.np_random.bit_generator.state = run.restore(saved, frozen)
        obs, _ = env.reset()
    next_checkpoint = _next_multiple(run.step, checkpoints)
    episode_slots: list[int] = []
    recent_return = None
    with StepProgress(label, config.total_steps, start=run.step) as progress:
        while run.step < config.total_steps and not solved:
            if rng.random() < epsilon_at(run.step, config):
                action = int(rng.integers(network.n_actions))
            else:
                action = int(q_values(obs[None])[0].argmax())
            next_obs, reward, terminated, truncated, _ = env.step(action)
            episode_slots.append(run.buffer.add(obs, action, reward, next_obs, terminated))
            run.step += 1
            step = run.step
            episode_ended = terminated or truncated
            if episode_ended:
                rewards = _label_episode(run.buffer, episode_slots, terminated, config)
                if her_k:
                    _add_relabelled(run, env_config, her_k, config.gamma, episode_slots,
                                    truncated)
                run.history.add(step, "episode_return", rewards.sum())
                recent_return = float(rewards.sum())
                episode_slots = []
                env_rng_state = copy.deepcopy(env.unwrapped.np_random.bit_generator.state)
                obs, _ = env.reset()
            else:
                obs = next_obs

            if frozen and not run.unfrozen and unfreeze_after_steps is not None \
                    and step >= unfreeze_after_steps:
                run.unfreeze(frozen)
            if step % config.train_freq == 0 and run.buffer.size >= config.learning_starts:
                _train_burst(run, config, label)
            if step % config.target_update_interval == 0:
                update_target()
            if step % config.eval_interval == 0 or step == config.total_steps:
                solved = evaluate()
            if episode_ended and step >= next_checkpoint and step < config.total_steps \
                    and not solved:
                checkpoints.save(key, label, run.checkpoint(env_rng_state))
                next_checkpoint = _next_multiple(step, checkpoints)
            progress.update(step, recent_return)
    env.close()
    evaluator.close()
    if checkpoints is not None:
        checkpoints.remove(key, label)
    if config.keep == "best" and run.best_state is not None:
        network.load_state_dict(run.best_state)
    set_frozen(network, frozen, frozen=False)
    return TrainResult(network=network, history=run.history.frame(), env_steps=run.step)


def _label_episode(buffer: ReplayBuffer, slots: list[int], terminated: bool,
                   config: DQNConfig) -> np.ndarray:
    """Hindsight labels of the episode that just ended: its returns-to-go (exact when it
    terminated) and n-step TD targets. Returns its rewards."""
    rewards, next_obs = buffer.reward[slots], buffer.next_obs[slots]
    episode = np.zeros(len(slots), np.int64)
    buffer.label(slots, returns_to_go(rewards, episode, config.gamma), valid=terminated,
                 bootstrap=n_step_bootstrap(rewards, next_obs, buffer.terminated[slots],
                                            episode, config.gamma, config.n_step))
    return rewards


def _add_relabelled(run: _Run, env_config: EnvConfig, her_k: int, gamma: float,
                    slots: list[int], truncated: bool) -> None:
    """HER: the ended episode's transitions again, with goals it achieved later."""
    copies = relabel_future(run.buffer.episode(slots, truncated), env_config.goal, her_k, gamma,
                            run.rng)
    run.buffer.extend(copies.transitions.obs, copies.transitions.action,
                      copies.transitions.reward, copies.transitions.next_obs,
                      copies.transitions.terminated, copies.return_to_go,
                      np.ones(len(copies), np.float32))


def _next_multiple(step: int, checkpoints: Checkpoints | None) -> float:
    """The env step after which the next checkpoint is due (never, without checkpoints)."""
    if checkpoints is None:
        return np.inf
    return (step // checkpoints.interval + 1) * checkpoints.interval


def _run_key(network: QNetwork, env_config: EnvConfig, config: DQNConfig, seed: int,
             eval_seeds: Sequence[int], warm_start: WarmStart | None, frozen: Sequence[str],
             unfreeze_after_steps: int | None, her_k: int) -> str:
    """What identifies a run: settings, initial weights and warm-start data."""
    settings = {"env": asdict(env_config), "dqn": asdict(config), "seed": seed,
                "eval_seeds": list(eval_seeds), "frozen": list(frozen),
                "unfreeze_after_steps": unfreeze_after_steps, "her_k": her_k}
    data = [] if warm_start is None else [a for a in vars(warm_start).values()
                                          if isinstance(a, np.ndarray)]
    return run_key(settings, [*network.state_dict().values(), *data])


def _train_burst(run: _Run, config: DQNConfig, label: str) -> None:
    """``gradient_steps`` updates, then one host sync to check the mean loss and the weights
    are finite; records the loss, or stops the run naming the step and last finite loss."""
    online, optimizer = run.network, run.optimizer
    total = torch.zeros(())
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    for _ in range(config.gradient_steps):
        loss = dqn_loss(run.buffer.sample(config.batch_size), online, run.target, config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_grad_norm(parameters, config.max_grad_norm)
        optimizer.step()
        total += loss.detach()
    weights_finite = bool(torch.stack([p.isfinite().all() for p in parameters]).all())
    mean_loss = float(total) / config.gradient_steps
    loss_finite = bool(np.isfinite(mean_loss))
    if not (loss_finite and weights_finite):
        what = "weights became non-finite" if loss_finite else f"loss became {mean_loss}"
        last = (f"last finite loss {run.last_finite_loss}"
                if np.isfinite(run.last_finite_loss) else "no finite loss before it")
        raise NonFiniteLossError(f"{label}: {what} at env step {run.step}; {last}. Nothing "
                                 "from this run was saved: lower dqn.learning_rate or "
                                 "dqn.max_grad_norm")
    run.last_finite_loss = mean_loss
    run.history.add(run.step, "loss", mean_loss)
