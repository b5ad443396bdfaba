"""Double DQN with optional warm start, frozen parts, n-step targets and the hindsight
return-to-go loss.

One loop serves pretraining, fine-tuning and the from-scratch control, so the three differ
only in what they are given, never in how they learn.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from hindsight_rl.core.checkpoints import (
    Checkpoint,
    Checkpoints,
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
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.progress import StepProgress
from hindsight_rl.core.replay import Batch, ReplayBuffer, batch_arrays
from hindsight_rl.core.rollouts import q_function
from hindsight_rl.core.stacked import StackedAdam, StackedQ, release

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


def epsilon_at(step: int, config: DQNConfig) -> float:
    """Linear decay from the initial to the final ε over ``exploration_fraction``."""
    progress = min(1.0, step / (config.exploration_fraction * config.total_steps))
    return config.exploration_initial_eps + progress * (
        config.exploration_final_eps - config.exploration_initial_eps)


@dataclass(frozen=True)
class Member:
    """One seed of a training run: its starting weights, its seed (environment, exploration,
    replay sampling) and its replay preload."""

    network: QNetwork
    seed: int
    warm_start: WarmStart | None = None


def td_targets(batch: Batch, online: StackedQ, target: StackedQ,
               double_dqn: bool) -> torch.Tensor:
    """``r + discount · Q_target(s', a*)``: ``discount`` is ``γ^m`` for an m-step target and
    0 after a termination; a truncated episode keeps its bootstrap."""
    next_q, _ = target.forward(batch.next_obs)
    if double_dqn:
        best = online.forward(batch.next_obs)[0].argmax(dim=2, keepdim=True)
        next_value = next_q.gather(2, best).squeeze(2)
    else:
        next_value = next_q.amax(dim=2)
    return batch.reward + batch.discount * next_value


def dqn_loss(batch: Batch, online: StackedQ, target: StackedQ, config: DQNConfig
             ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Each member's Huber TD loss plus β·mean((G_t − Q(s_t,a_t))²) over rows with an exact
    return-to-go (only the part of G_t above Q with ``rtg_loss: lower_bound``).

    Returns the losses ``(K,)``, their gradient with respect to the Q-values ``(K, B, A)``
    and the layers' inputs, which :meth:`StackedQ.backward` takes from there.
    """
    q, inputs = online.forward(batch.obs)
    q_taken = q.gather(2, batch.action).squeeze(2)
    td_target = td_targets(batch, online, target, config.double_dqn)
    loss = F.smooth_l1_loss(q_taken, td_target, reduction="none").mean(dim=1)
    gradient = (q_taken - td_target).clamp_(-1.0, 1.0).div_(q_taken.shape[1])
    if config.rtg_coef > 0:
        shortfall = batch.return_to_go - q_taken
        if config.rtg_loss == "lower_bound":
            shortfall = shortfall.clamp(min=0.0)
        rows = batch.rtg_valid.sum(dim=1, keepdim=True).clamp(min=1.0)
        loss = loss + config.rtg_coef * (shortfall.pow(2) * batch.rtg_valid).sum(dim=1) \
            / rows.squeeze(1)
        gradient -= (2 * config.rtg_coef) * shortfall * batch.rtg_valid / rows
    q_gradient = torch.zeros_like(q).scatter_(2, batch.action, gradient.unsqueeze(2))
    return loss, q_gradient, inputs


def replay_capacity(config: DQNConfig, her_k: int) -> int:
    """Room for ``buffer_size`` env steps and their relabelled copies: an arm with HER
    remembers as many env steps as one without, instead of five times fewer (k = 4)."""
    return config.buffer_size * (1 + her_k)


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


class _Seed:
    """One member's side of a run: its environment, replay buffer, exploration and history."""

    def __init__(self, member: Member, env_config: EnvConfig, config: DQNConfig,
                 her_k: int, label: str) -> None:
        self.network, self.seed = member.network, member.seed
        self.label = f"{label} seed {member.seed}"
        self.rng = np.random.default_rng(member.seed)
        self.env = make_env(env_config)
        self.env.action_space.seed(member.seed)
        self.buffer = ReplayBuffer(replay_capacity(config, her_k), member.network.obs_dim,
                                   self.rng, config.gamma)
        self.history = _History()
        self.q_values = q_function(member.network)  # for evaluation; acting uses the stack
        self.best_return = -np.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.last_finite_loss = float("nan")
        self.recent_return: float | None = None
        self.episode_slots: list[int] = []
        self.episode_start: dict[str, Any] | None = None
        """The env's RNG state before this episode's reset; None for the first, seeded one."""
        self.obs, _ = self.env.reset(seed=member.seed)
        warm_start = member.warm_start
        if warm_start is not None and len(warm_start):
            self.buffer.extend(warm_start.obs, warm_start.action, warm_start.reward,
                               warm_start.next_obs, warm_start.terminated,
                               warm_start.return_to_go, warm_start.rtg_valid,
                               warm_start.bootstrap(config.gamma, config.n_step))

    def act_and_step(self, step: int, epsilon: float, q_values: np.ndarray,
                     env_config: EnvConfig, config: DQNConfig, her_k: int) -> None:
        """One ε-greedy env step (greedy on ``q_values`` of the current observation) stored
        in the buffer; an ended episode is labelled (and relabelled with HER) before the env
        resets. ``step`` counts this one."""
        if self.rng.random() < epsilon:
            action = int(self.rng.integers(self.network.n_actions))
        else:
            action = int(q_values.argmax())
        next_obs, reward, terminated, truncated, _ = self.env.step(action)
        self.episode_slots.append(self.buffer.add(self.obs, action, reward, next_obs,
                                                  terminated))
        if not (terminated or truncated):
            self.obs = next_obs
            return
        rewards = _label_episode(self.buffer, self.episode_slots, terminated, config)
        if her_k:
            _add_relabelled(self, env_config, her_k, config.gamma, truncated)
        self.history.add(step, "episode_return", rewards.sum())
        self.recent_return = float(rewards.sum())
        self.episode_slots = []
        self.episode_start = copy.deepcopy(self.env.unwrapped.np_random.bit_generator.state)
        self.obs, _ = self.env.reset()

    def evaluate(self, evaluator: GreedyEvaluator, step: int, total: int) -> float:
        """Add a learning-curve point (keeping the best weights so far); return its mean."""
        returns = evaluator.run(self.q_values)
        self.history.add(step, "eval_return", returns.mean())
        if returns.mean() >= self.best_return:
            self.best_return = float(returns.mean())
            self.best_state = copy.deepcopy(self.network.state_dict())
        logger.info("%s: step %d/%d, greedy return %.1f ± %.1f", self.label, step, total,
                    returns.mean(), returns.std())
        return float(returns.mean())

    def checkpoint(self) -> Checkpoint:
        tensors = {**prefixed("replay", {k: torch.from_numpy(v)
                                         for k, v in self.buffer.arrays().items()}),
                   **prefixed("history", self.history.tensors()),
                   **({} if self.best_state is None else prefixed("best", self.best_state))}
        document = {"best_return": self.best_return, "last_finite_loss": self.last_finite_loss,
                    "replay_position": self.buffer.position, "rng": self.rng.bit_generator.state,
                    "episode_start": self.episode_start, "episode_slots": self.episode_slots}
        return Checkpoint(tensors, document)

    def restore(self, checkpoint: Checkpoint) -> None:
        """Load this member's part of a checkpoint and bring its env back to the same point
        of the same episode: reset as then, then the episode's stored actions again."""
        tensors, document = checkpoint.tensors, checkpoint.document
        self.buffer.restore({k: v.numpy() for k, v in unprefixed("replay", tensors).items()},
                            document["replay_position"])
        self.history.restore(unprefixed("history", tensors))
        self.best_state = unprefixed("best", tensors) or None
        self.best_return = document["best_return"]
        self.last_finite_loss = document["last_finite_loss"]
        self.rng.bit_generator.state = document["rng"]
        self.episode_start, self.episode_slots = document["episode_start"], \
            document["episode_slots"]
        if self.episode_start is None:
            self.obs, _ = self.env.reset(seed=self.seed)
        else:
            self.env.unwrapped.np_random.bit_generator.state = self.episode_start
            self.obs, _ = self.env.reset()
        for action in self.buffer.action[self.episode_slots, 0]:
            self.obs, *_ = self.env.step(int(action))

    def close(self) -> None:
        self.env.close()


@dataclass
class _Run:
    """Everything the training loop changes: exactly what a checkpoint holds."""

    seeds: list[_Seed]
    online: StackedQ
    target: StackedQ
    adam: StackedAdam
    batch: tuple[tuple[np.ndarray, np.ndarray], Batch]
    """Arrays every batch is sampled into, and the tensors sharing them."""
    step: int = 0
    unfrozen: bool = False

    def unfreeze(self) -> None:
        """Frozen layers start training, with Adam steps of their own."""
        self.online.unfreeze()
        self.adam.add_frozen_span()
        self.unfrozen = True

    def checkpoint(self) -> Checkpoint:
        adam_tensors, adam_document = self.adam.state()
        tensors = {**prefixed("online", self.online.state()),
                   **prefixed("target", self.target.state()),
                   **prefixed("adam", adam_tensors)}
        seeds = []
        for k, seed in enumerate(self.seeds):
            part = seed.checkpoint()
            tensors.update(prefixed(f"seed{k}", part.tensors))
            seeds.append(part.document)
        document = {"step": self.step, "unfrozen": self.unfrozen, "adam": adam_document,
                    "seeds": seeds}
        return Checkpoint(tensors, document)

    def restore(self, checkpoint: Checkpoint) -> None:
        tensors, document = checkpoint.tensors, checkpoint.document
        if document["unfrozen"] and not self.unfrozen:
            self.unfreeze()
        self.online.load_state(unprefixed("online", tensors))
        self.target.load_state(unprefixed("target", tensors))
        self.adam.load_state(unprefixed("adam", tensors), document["adam"])
        for k, seed in enumerate(self.seeds):
            seed.restore(Checkpoint(unprefixed(f"seed{k}", tensors), document["seeds"][k]))
        self.step = document["step"]


def train_dqn(members: Sequence[Member], env_config: EnvConfig, config: DQNConfig,
              eval_seeds: Sequence[int], frozen: Sequence[str] = (),
              unfreeze_after_steps: int | None = None, label: str = "dqn",
              checkpoints: Checkpoints | None = None, her_k: int = 0) -> list[TrainResult]:
    """Train every member's network in place for ``config.total_steps`` env steps (its warm
    start included), all members in step and sharing each update (:class:`StackedQ`).

    Args:
        members: initial weights (fresh, or transferred), seeds and replay preloads; their
            warm starts must count the same env steps. Members stopping on a threshold
            (``config.stop_on_threshold``) train one after another instead.
        env_config: the task to train on.
        config: DQN hyperparameters.
        eval_seeds: seeds of the greedy episodes behind each learning-curve point.
        frozen: parts kept out of the optimiser.
        unfreeze_after_steps: env step at which ``frozen`` parts start training.
        label: name used in log lines (with each member's seed) and checkpoint file names.
        checkpoints: where to save the run's state every ``interval`` env steps and resume
            it from; the same run ends with the same weights whether or not it was
            interrupted.
        her_k: relabelled copies of each transition added to the buffer when its episode
            ends (HER "future", ``env_config.goal``'s reward); 0 for none.
    """
    if config.stop_on_threshold and len(members) > 1:
        return [result for member in members
                for result in train_dqn([member], env_config, config, eval_seeds, frozen,
                                        unfreeze_after_steps, label, checkpoints, her_k)]
    start = {min(m.warm_start.steps_taken if m.warm_start is not None else 0,
                 config.total_steps) for m in members}
    if len(start) != 1:
        raise ValueError(f"{label}: members' warm starts count different env steps {start}; "
                         "train them separately")
    key = None if checkpoints is None else _run_key(members, env_config, config, eval_seeds,
                                                    frozen, unfreeze_after_steps, her_k)
    run_label = f"{label} seeds {'-'.join(str(m.seed) for m in members)}"
    online = StackedQ([m.network for m in members], frozen)  # before acting views weights
    seeds = [_Seed(member, env_config, config, her_k, label) for member in members]
    target = StackedQ([copy.deepcopy(m.network) for m in members])
    run = _Run(seeds, online, target, StackedAdam(online, config.learning_rate),
               batch_arrays(len(members), config.batch_size, members[0].network.obs_dim),
               step=start.pop())
    evaluator = GreedyEvaluator(env_config, eval_seeds)
    stop_at = env_info(env_config).reward_threshold if config.stop_on_threshold else None

    def evaluate() -> bool:
        """A learning-curve point for every member; True once they all reach ``stop_at``."""
        means = [seed.evaluate(evaluator, run.step, config.total_steps) for seed in seeds]
        return stop_at is not None and min(means) >= stop_at

    saved = None if checkpoints is None else checkpoints.load(key, run_label)
    solved = False
    if saved is None:
        solved = evaluate()
    else:
        run.restore(saved)
    next_checkpoint = _next_multiple(run.step, checkpoints)
    with StepProgress(run_label, config.total_steps, start=run.step) as progress:
        while run.step < config.total_steps and not solved:
            epsilon = epsilon_at(run.step, config)
            run.step += 1
            step = run.step
            q_values = online.q_values(np.stack([seed.obs for seed in seeds]))
            for seed, member_q in zip(seeds, q_values, strict=True):
                seed.act_and_step(step, epsilon, member_q, env_config, config, her_k)
            if frozen and not run.unfrozen and unfreeze_after_steps is not None \
                    and step >= unfreeze_after_steps:
                run.unfreeze()
            if step % config.train_freq == 0 and step >= config.learning_starts:
                _train_burst(run, config)
            if step % config.target_update_interval == 0:
                run.target.copy_from(run.online)
            if step % config.eval_interval == 0 or step == config.total_steps:
                solved = evaluate()
            if step >= next_checkpoint and step < config.total_steps and not solved:
                checkpoints.save(key, run_label, run.checkpoint())
                next_checkpoint = _next_multiple(step, checkpoints)
            progress.update(step, seeds[0].recent_return)
    evaluator.close()
    if checkpoints is not None:
        checkpoints.remove(key, run_label)
    release([m.network for m in members])
    results = []
    for seed in seeds:
        seed.close()
        if config.keep == "best" and seed.best_state is not None:
            seed.network.load_state_dict(seed.best_state)
        results.append(TrainResult(network=seed.network, history=seed.history.frame(),
                                   env_steps=run.step))
    return results


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


def _add_relabelled(seed: _Seed, env_config: EnvConfig, her_k: int, gamma: float,
                    truncated: bool) -> None:
    """HER: the ended episode's transitions again, with goals it achieved later."""
    copies = relabel_future(seed.buffer.episode(seed.episode_slots, truncated),
                            env_config.goal, her_k, gamma, seed.rng)
    seed.buffer.extend(copies.transitions.obs, copies.transitions.action,
                       copies.transitions.reward, copies.transitions.next_obs,
                       copies.transitions.terminated, copies.return_to_go,
                       np.ones(len(copies), np.float32))


def _next_multiple(step: int, checkpoints: Checkpoints | None) -> float:
    """The env step after which the next checkpoint is due (never, without checkpoints)."""
    if checkpoints is None:
        return np.inf
    return (step // checkpoints.interval + 1) * checkpoints.interval


def _run_key(members: Sequence[Member], env_config: EnvConfig, config: DQNConfig,
             eval_seeds: Sequence[int], frozen: Sequence[str],
             unfreeze_after_steps: int | None, her_k: int) -> str:
    """What identifies a run: settings, seeds, initial weights and warm-start data."""
    settings = {"env": asdict(env_config), "dqn": asdict(config),
                "seeds": [m.seed for m in members], "eval_seeds": list(eval_seeds),
                "frozen": list(frozen), "unfreeze_after_steps": unfreeze_after_steps,
                "her_k": her_k}
    arrays: list[np.ndarray | torch.Tensor] = []
    for member in members:
        arrays += member.network.state_dict().values()
        if member.warm_start is not None:
            arrays += [a for a in vars(member.warm_start).values() if isinstance(a, np.ndarray)]
    return run_key(settings, arrays)


def _train_burst(run: _Run, config: DQNConfig) -> None:
    """``gradient_steps`` updates of every member, then one host sync to check each mean
    loss and the weights are finite; records the losses, or stops the run naming the
    member, the step and its last finite loss."""
    total = torch.zeros(len(run.seeds))
    (table, action), batch = run.batch
    for _ in range(config.gradient_steps):
        for k, seed in enumerate(run.seeds):
            seed.buffer.sample_into(table[k], action[k])
        loss, q_gradient, inputs = dqn_loss(batch, run.online, run.target, config)
        run.online.backward(q_gradient, inputs)
        run.online.clip_gradients(config.max_grad_norm)
        run.adam.step()
        total += loss
    weights_finite = torch.stack([w.flatten(1).isfinite().all(dim=1)
                                  for w in (*run.online.weights, *run.online.biases)]
                                 ).all(dim=0).tolist()
    mean_losses = (total / config.gradient_steps).tolist()
    for seed, mean_loss, finite in zip(run.seeds, mean_losses, weights_finite, strict=True):
        if not (np.isfinite(mean_loss) and finite):
            what = ("weights became non-finite" if np.isfinite(mean_loss)
                    else f"loss became {mean_loss}")
            last = (f"last finite loss {seed.last_finite_loss}"
                    if np.isfinite(seed.last_finite_loss) else "no finite loss before it")
            raise NonFiniteLossError(f"{seed.label}: {what} at env step {run.step}; {last}. "
                                     "Nothing from this run was saved: lower "
                                     "dqn.learning_rate or dqn.max_grad_norm")
    for seed, mean_loss in zip(run.seeds, mean_losses, strict=True):
        seed.last_finite_loss = mean_loss
        seed.history.add(run.step, "loss", mean_loss)
