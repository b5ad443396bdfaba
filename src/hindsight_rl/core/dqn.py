"""Double DQN with optional warm start, frozen parts, n-step targets and the hindsight
return-to-go loss.

One loop serves pretraining, fine-tuning and the from-scratch control, so the three differ
only in what they are given, never in how they learn.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from hindsight_rl.core.artefacts import HISTORY_METRICS
from hindsight_rl.core.checkpoints import (
    Checkpoint,
    Checkpoints,
    prefixed,
    run_key,
    unprefixed,
)
from hindsight_rl.core.config import DQNConfig, EnvConfig, FinetuneConfig, TrainingConfig
from hindsight_rl.core.envs import env_info, make_env
from hindsight_rl.core.errors import HindsightRLError
from hindsight_rl.core.evaluation import GreedyEvaluator, best_acting
from hindsight_rl.core.guidance import Guidance
from hindsight_rl.core.hindsight import (
    Bootstrap,
    n_step_bootstrap,
    relabel_future,
    returns_to_go,
)
from hindsight_rl.core.networks import NumpyStack, QNetwork
from hindsight_rl.core.novelty import NoveltyBonus
from hindsight_rl.core.progress import StepProgress
from hindsight_rl.core.replay import Batch, ReplayBuffer, batch_arrays
from hindsight_rl.core.stacked import StackedOptimizer

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
    frozen: tuple[str, ...] = ()
    """Parts still frozen when training ended."""
    temperature: float | None = None
    """SAC's entropy temperature α at the end (None for DQN): what fine-tuning from this
    policy starts with."""
    acting_temperature: float = 0.0
    """DQN: the Boltzmann temperature the kept network played its learning-curve point at
    (0: the argmax), which its policy file plays at."""


def epsilon_at(step: int, config: DQNConfig) -> float:
    """Linear decay from the initial to the final ε over ``exploration_fraction``."""
    progress = min(1.0, step / (config.exploration_fraction * config.total_steps))
    return config.exploration_initial_eps + progress * (
        config.exploration_final_eps - config.exploration_initial_eps)


@dataclass(frozen=True)
class Member:
    """One network of a training run: its starting weights (a one-member network), its seed
    (environment, exploration, replay sampling) and its replay preload."""

    network: QNetwork
    seed: int
    warm_start: WarmStart | None = None

    def tensors(self) -> list[torch.Tensor]:
        """The starting weights, as the run's key hashes them."""
        return list(self.network.state_dict().values())


CurveCallback = Callable[[int, list[float]], bool]
"""Called after every learning-curve point with the env step and each member's mean greedy
return; True ends the run there (a tuning trial pruned, or its outcome already known)."""


@dataclass(frozen=True)
class RunSpec:
    """What every member of a run shares: the task, the settings, what was transferred and
    how fine-tuning treats it."""

    env_config: EnvConfig
    config: DQNConfig | TrainingConfig
    eval_seeds: Sequence[int]
    label: str = "dqn"
    her_k: int = 0
    finetune: FinetuneConfig = FinetuneConfig(frozen=())
    transferred: tuple[str, ...] = ()
    on_curve: CurveCallback | None = None

    def unfreezes_at(self, step: int) -> bool:
        """Whether ``unfreeze_after_steps`` unfreezes every member at ``step``."""
        after = self.finetune.unfreeze_after_steps
        return after is not None and step >= after


def stalled(curve: list[float], patience: int, threshold: float | None) -> bool:
    """Whether the last ``patience`` points of a learning curve brought no new best (a tie is
    not one) while the best is short of ``threshold``: what unfreezes a member's frozen
    parts under ``finetune.unfreeze_patience``."""
    if len(curve) <= patience:
        return False
    best = max(curve)
    return (threshold is None or best < threshold) and curve.index(best) < len(curve) - patience


def td_targets(batch: Batch, online: QNetwork, target: QNetwork,
               double_dqn: bool) -> torch.Tensor:
    """``r + discount · Q_target(s', a*)`` per member and row: ``discount`` is ``γ^m`` for an
    m-step target and 0 after a termination; a truncated episode keeps its bootstrap."""
    with torch.no_grad():
        next_q = target(batch.bootstrap_obs)
        if double_dqn:
            best = online(batch.bootstrap_obs).argmax(dim=2, keepdim=True)
            next_value = next_q.gather(2, best).squeeze(2)
        else:
            next_value = next_q.amax(dim=2)
        return batch.bootstrap_reward + batch.discount * next_value


def return_to_go_loss(q_taken: torch.Tensor, batch: Batch,
                      kind: str = "squared") -> torch.Tensor:
    """Each member's mean of ``(G_t − Q(s_t,a_t))²`` over the rows whose return-to-go is
    exact (only the part of ``G_t`` above ``Q`` with ``lower_bound``)."""
    shortfall = batch.return_to_go - q_taken
    if kind == "lower_bound":
        shortfall = shortfall.clamp(min=0.0)
    rows = batch.rtg_valid.sum(dim=1).clamp(min=1.0)
    return (shortfall.pow(2) * batch.rtg_valid).sum(dim=1) / rows


def dqn_loss(batch: Batch, online: QNetwork, target: QNetwork, config: DQNConfig,
             guidance: Guidance | None = None) -> torch.Tensor:
    """Each member's loss ``(K,)``: the mean Huber TD error, plus β times the return-to-go
    loss, plus the fine-tuning guidance (teacher, anchor). Members never mix, so the sum's
    gradient is each member's own."""
    td_target = td_targets(batch, online, target, config.double_dqn)
    q = online(batch.obs)
    q_taken = q.gather(2, batch.action).squeeze(2)
    loss = F.smooth_l1_loss(q_taken, td_target, reduction="none").mean(dim=1)
    if config.rtg_coef > 0:
        loss = loss + config.rtg_coef * return_to_go_loss(q_taken, batch, config.rtg_loss)
    if guidance is not None and guidance.active:
        loss = loss + guidance.loss(q, batch.obs)
    return loss


def replay_capacity(config: DQNConfig, her_k: int) -> int:
    """Room for ``buffer_size`` env steps and their relabelled copies: an arm with HER
    remembers as many env steps as one without, instead of five times fewer (k = 4)."""
    return config.buffer_size * (1 + her_k)


class History:
    """Collects (env_step, metric, value) rows without touching the hot loop much."""

    METRICS = HISTORY_METRICS

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


class MemberRun:
    """Member ``index``'s side of a run, whatever the algorithm: its environment, replay
    buffer, random numbers, history and best weights so far."""

    def __init__(self, index: int, member: Member | Any, spec: RunSpec, obs_dim: int,
                 action_dim: int | None = None) -> None:
        self.index, self.seed = index, member.seed
        self.label = f"{spec.label} seed {member.seed}"
        self.rng = np.random.default_rng(member.seed)
        self.env = make_env(spec.env_config)
        self.env.action_space.seed(member.seed)
        self.buffer = self.new_buffer(spec, obs_dim, action_dim)
        self.history = History()
        self.best_return = -np.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.played_temperature = 0.0
        """The acting temperature of the last learning-curve point (0: the argmax)."""
        self.best_temperature = 0.0
        """The acting temperature of the best point, kept with its weights."""
        self.last_finite_loss = float("nan")
        self.recent_return: float | None = None
        self.episode_slots: list[int] = []
        self.episode_start: dict[str, Any] | None = None
        """The env's RNG state before this episode's reset; None for the first, seeded one."""
        self.novelty: NoveltyBonus | None = None
        """The count-based bonus on this member's rewards, if configured."""
        self.episode_reward = 0.0
        """The env's own rewards this episode, summed as they come: the recorded return,
        whatever the replay stores (a novelty bonus, float32 rounding)."""
        self.obs, _ = self.env.reset(seed=member.seed)
        if member.warm_start is not None and len(member.warm_start):
            self.preload(member.warm_start, spec)

    def new_buffer(self, spec: RunSpec, obs_dim: int,
                   action_dim: int | None) -> ReplayBuffer | Any:
        """This member's replay: transitions, with room for HER's copies."""
        return ReplayBuffer(replay_capacity(spec.config, spec.her_k), obs_dim, self.rng,
                            spec.config.gamma, action_dim)

    def preload(self, warm_start: WarmStart, spec: RunSpec) -> None:
        """The warm start's rows into the replay, with their hindsight labels."""
        self.buffer.extend(warm_start.obs, warm_start.action, warm_start.reward,
                           warm_start.next_obs, warm_start.terminated,
                           warm_start.return_to_go, warm_start.rtg_valid,
                           warm_start.bootstrap(spec.config.gamma, spec.config.n_step))

    def step_env(self, action: int | np.ndarray, step: int, spec: RunSpec) -> None:
        """One env step with ``action``, stored in the buffer; an ended episode is labelled
        (and relabelled with HER) before the env resets. ``step`` counts this one."""
        next_obs, reward, terminated, truncated, _ = self.env.step(action)
        self.episode_reward += float(reward)
        if self.novelty is not None:
            reward = float(reward) + self.novelty(next_obs)
        self.episode_slots.append(self.store(action, reward, next_obs, terminated,
                                             truncated))
        if not (terminated or truncated):
            self.obs = next_obs
            return
        self.finish_episode(terminated, truncated, spec)
        self.end_episode(step, self.episode_reward)

    def store(self, action: int | np.ndarray, reward: float, next_obs: np.ndarray,
              terminated: bool, truncated: bool) -> int:
        """The step from the current observation into the replay; returns its slot."""
        return self.buffer.add(self.obs, action, reward, next_obs, terminated)

    def finish_episode(self, terminated: bool, truncated: bool, spec: RunSpec) -> None:
        """Label the episode that just ended in hindsight (and relabel it with HER)."""
        label_episode(self.buffer, self.episode_slots, terminated, spec.config)
        if spec.her_k:
            _add_relabelled(self, spec.env_config, spec.her_k, spec.config.gamma, truncated)

    def end_episode(self, step: int, episode_return: float) -> None:
        """Record the ended episode's return and start the next episode."""
        self.history.add(step, "episode_return", episode_return)
        self.recent_return = episode_return
        self.episode_slots, self.episode_reward = [], 0.0
        self.episode_start = copy.deepcopy(self.env.unwrapped.np_random.bit_generator.state)
        self.obs, _ = self.env.reset()

    def evaluate(self, returns: np.ndarray, played: QNetwork | Any, step: int,
                 total: int) -> float:
        """Add a learning-curve point from the greedy ``returns`` of the network ``played``
        (keeping its weights when they are the best so far); return its mean."""
        self.history.add(step, "eval_return", returns.mean())
        if returns.mean() >= self.best_return:
            self.best_return = float(returns.mean())
            self.best_state = played.member_state(self.index)
            self.best_temperature = self.played_temperature
        acting = (f" (Boltzmann, temperature {self.played_temperature:.3g})"
                  if self.played_temperature else "")
        logger.info("%s: step %d/%d, return %.1f ± %.1f%s", self.label, step, total,
                    returns.mean(), returns.std(), acting)
        return float(returns.mean())

    def curve(self) -> list[float]:
        """The learning curve so far: each point's mean greedy return."""
        return [value for _, metric, value in self.history.rows if metric == "eval_return"]

    def checkpoint(self) -> Checkpoint:
        tensors = {**prefixed("replay", {k: torch.from_numpy(v)
                                         for k, v in self.buffer.arrays().items()}),
                   **prefixed("history", self.history.tensors()),
                   **({} if self.best_state is None else prefixed("best", self.best_state)),
                   **({} if self.novelty is None else prefixed("novelty",
                                                               self.novelty.tensors()))}
        document = {"best_return": _finite_or_none(self.best_return),
                    "played_temperature": self.played_temperature,
                    "best_temperature": self.best_temperature,
                    "last_finite_loss": _finite_or_none(self.last_finite_loss),
                    "replay_position": self.buffer.position, "rng": self.rng.bit_generator.state,
                    "episode_start": self.episode_start, "episode_slots": self.episode_slots,
                    "episode_reward": self.episode_reward}
        return Checkpoint(tensors, document)

    def restore(self, checkpoint: Checkpoint) -> None:
        """Load this member's part of a checkpoint and bring its env back to the same point
        of the same episode: reset as then, then the episode's stored actions again."""
        tensors, document = checkpoint.tensors, checkpoint.document
        self.buffer.restore({k: v.numpy() for k, v in unprefixed("replay", tensors).items()},
                            document["replay_position"])
        self.history.restore(unprefixed("history", tensors))
        self.best_state = unprefixed("best", tensors) or None
        self.best_return = _or(document["best_return"], -np.inf)
        self.played_temperature = document.get("played_temperature", 0.0)
        self.best_temperature = document.get("best_temperature", 0.0)
        self.last_finite_loss = _or(document["last_finite_loss"], float("nan"))
        self.rng.bit_generator.state = document["rng"]
        self.episode_start, self.episode_slots = document["episode_start"], \
            document["episode_slots"]
        # A checkpoint written before the env's own sum was kept has the replay's to offer.
        self.episode_reward = document.get(
            "episode_reward", float(self.buffer.reward[self.episode_slots].sum()))
        if self.novelty is not None:
            self.novelty.restore(unprefixed("novelty", tensors))
        if self.episode_start is None:
            self.obs, _ = self.env.reset(seed=self.seed)
        else:
            self.env.unwrapped.np_random.bit_generator.state = self.episode_start
            self.obs, _ = self.env.reset()
        for action in self.buffer.action[self.episode_slots]:
            self.obs, *_ = self.env.step(self.env_action(action))

    def env_action(self, stored: np.ndarray) -> int | np.ndarray:
        """A stored action as the env takes it."""
        return stored if self.buffer.continuous else int(stored[0])

    def close(self) -> None:
        self.env.close()

    def result(self, played: QNetwork | Any, env_steps: int, config: TrainingConfig,
               frozen: tuple[str, ...], temperature: float | None = None) -> TrainResult:
        """This member's network (its best or last weights, as ``config.keep`` says) and
        history; closes its env."""
        self.close()
        network = played.member(self.index)
        acting_temperature = self.played_temperature
        if config.keep == "best" and self.best_state is not None:
            network.load_state_dict(self.best_state)
            acting_temperature = self.best_temperature
        return TrainResult(network=network, history=self.history.frame(),
                           env_steps=env_steps, frozen=frozen, temperature=temperature,
                           acting_temperature=acting_temperature)


def members_checkpoint(members: Sequence[MemberRun]) -> tuple[dict[str, torch.Tensor],
                                                                list[dict[str, Any]]]:
    """Every member's part of a run's checkpoint: tensors prefixed ``member<k>``, and the
    documents in member order."""
    tensors: dict[str, torch.Tensor] = {}
    documents = []
    for k, member in enumerate(members):
        part = member.checkpoint()
        tensors.update(prefixed(f"member{k}", part.tensors))
        documents.append(part.document)
    return tensors, documents


def restore_members(members: Sequence[MemberRun], tensors: dict[str, torch.Tensor],
                    documents: list[dict[str, Any]]) -> None:
    """Inverse of :func:`members_checkpoint`."""
    for k, member in enumerate(members):
        member.restore(Checkpoint(unprefixed(f"member{k}", tensors), documents[k]))


def finite_members(parameters: Sequence[torch.Tensor]) -> torch.Tensor:
    """Whether each member's slices of every tensor are finite ``(members,)``."""
    with torch.no_grad():
        return torch.stack([p.flatten(1).isfinite().all(dim=1) for p in parameters]).all(dim=0)


def record_losses(members: Sequence[MemberRun], mean_losses: list[float],
                  weights_finite: list[bool], step: int, loss_name: str, advice: str) -> None:
    """Each member's mean loss of a burst recorded, after checking that every loss and the
    weights are finite; otherwise the run stops naming the member, the step and its last
    finite loss (``loss_name`` names the loss, ``advice`` what to lower)."""
    for member, mean_loss, finite in zip(members, mean_losses, weights_finite, strict=True):
        if not (np.isfinite(mean_loss) and finite):
            what = ("weights became non-finite" if np.isfinite(mean_loss)
                    else f"{loss_name} became {mean_loss}")
            last = (f"last finite loss {member.last_finite_loss}"
                    if np.isfinite(member.last_finite_loss) else "no finite loss before it")
            raise NonFiniteLossError(f"{member.label}: {what} at env step {step}; {last}. "
                                     f"Nothing from this run was saved: {advice}")
    for member, mean_loss in zip(members, mean_losses, strict=True):
        member.last_finite_loss = mean_loss
        member.history.add(step, "loss", mean_loss)


class _MemberRun(MemberRun):
    """A DQN member: ε-greedy on its Q-values."""

    def __init__(self, index: int, member: Member, spec: RunSpec, acting: NumpyStack) -> None:
        super().__init__(index, member, spec, member.network.obs_dim)
        self.n_actions = member.network.n_actions
        self.novelty = novelty_bonus(spec.config, member)
        self.q_values = acting.q_function(index)
        """This member's Q-values of a batch of observations, on its current weights."""

    def act_and_step(self, step: int, epsilon: float, q_values: np.ndarray,
                     spec: RunSpec) -> None:
        """One ε-greedy env step, greedy on ``q_values`` of the current observation."""
        if self.rng.random() < epsilon:
            action = int(self.rng.integers(self.n_actions))
        else:
            action = int(q_values.argmax())
        self.step_env(action, step, spec)


def novelty_bonus(config: DQNConfig, member: Member) -> NoveltyBonus | None:
    """The member's count-based bonus, hashing observations as its network normalises
    them; None when ``novelty_coef`` is 0."""
    if not config.novelty_coef:
        return None
    encoder = member.network.encoder
    return NoveltyBonus(config.novelty_coef, config.novelty_bits, encoder.shift.numpy(),
                        encoder.scale.numpy(), member.seed)


def _finite_or_none(value: float) -> float | None:
    """``value`` for a checkpoint's strict JSON: none yet (−∞, NaN) as null."""
    return value if np.isfinite(value) else None


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


class _StackRun:
    """Everything the training loop changes: exactly what a checkpoint holds."""

    member_run = _MemberRun

    def __init__(self, members: Sequence[Member], spec: RunSpec) -> None:
        self.spec = spec
        self.online = QNetwork.stack([m.network for m in members])
        self.target = QNetwork.stack([m.network for m in members]).requires_grad_(False)
        self.threshold = env_info(spec.env_config).reward_threshold
        self.guidance = Guidance(self.online, spec.finetune, spec.transferred, self.threshold)
        self.optimizer = StackedOptimizer(self.online, spec.finetune.frozen,
                                          spec.config.learning_rate, spec.config.max_grad_norm)
        self.acting = self.online.numpy_forward()
        self.members = [self.member_run(k, member, spec, self.acting)
                        for k, member in enumerate(members)]
        self.sample_arrays, self.batch = batch_arrays(len(members), spec.config.batch_size,
                                                      self.online.obs_dim)
        self.step = min(members[0].warm_start.steps_taken if members[0].warm_start else 0,
                        spec.config.total_steps)

    def burst(self) -> None:
        """One training burst on transitions sampled from each member's replay."""
        table, action = self.sample_arrays

        def loss_of_batch() -> torch.Tensor:
            for k, member in enumerate(self.members):
                member.buffer.sample_into(table[k], action[k])
            return dqn_loss(self.batch, self.online, self.target, self.spec.config,
                            self.guidance)
        train_burst(self, loss_of_batch)

    @property
    def played(self) -> QNetwork:
        """The network a learning-curve point plays (and keeps when it is the best)."""
        return self.online

    def play(self, evaluator: GreedyEvaluator, member: _MemberRun) -> np.ndarray:
        """``member``'s returns on the learning-curve episodes as its best acting plays them
        (:func:`~hindsight_rl.core.evaluation.best_acting` over ``dqn.acting_temperatures``).
        Which one played is the member's ``played_temperature``, kept with its weights when
        the point is its best."""
        returns, member.played_temperature = best_acting(
            evaluator, member.q_values, self.spec.config.acting_temperatures, self.threshold,
            np.random.default_rng([member.seed, self.step]))
        return returns

    def observe(self, means: list[float]) -> None:
        """The teacher learns of each member's new learning-curve point."""
        for k, mean in enumerate(means):
            self.guidance.observe(k, mean, self.online)

    def unfreeze(self, members: Sequence[int] | None = None) -> None:
        self.optimizer.unfreeze(members)

    def train(self) -> None:
        """The updates due at this env step: a burst, and the target's copy."""
        config = self.spec.config
        if self.step % config.train_freq == 0 and self.step >= config.learning_starts:
            self.burst()
        if self.step % config.target_update_interval == 0:
            self.sync_target()

    def act(self) -> None:
        """One env step of every member, greedy on the current weights with prob. 1 − ε."""
        epsilon = epsilon_at(self.step, self.spec.config)
        self.step += 1
        q_values = self.acting(np.stack([member.obs for member in self.members])[:, None])
        for member, member_q in zip(self.members, q_values[:, 0], strict=True):
            member.act_and_step(self.step, epsilon, member_q, self.spec)

    def sync_target(self) -> None:
        """The hard target update: every parameter copied in place."""
        with torch.no_grad():
            for target, online in zip(self.target.parameters(), self.online.parameters(),
                                      strict=True):
                target.copy_(online)

    def checkpoint(self) -> Checkpoint:
        optimizer_tensors, optimizer_document = self.optimizer.state()
        guidance_tensors, guidance_document = self.guidance.state()
        tensors = {**prefixed("online", self.online.state_dict()),
                   **prefixed("target", self.target.state_dict()),
                   **prefixed("adam", optimizer_tensors),
                   **prefixed("guidance", guidance_tensors)}
        member_tensors, members = members_checkpoint(self.members)
        tensors.update(member_tensors)
        document = {"step": self.step, "adam": optimizer_document,
                    "guidance": guidance_document, "members": members}
        return Checkpoint(tensors, document)

    def restore(self, checkpoint: Checkpoint) -> None:
        tensors, document = checkpoint.tensors, checkpoint.document
        self.online.load_state_dict(unprefixed("online", tensors))
        self.target.load_state_dict(unprefixed("target", tensors))
        self.optimizer.load_state(unprefixed("adam", tensors), document["adam"])
        self.guidance.load_state(unprefixed("guidance", tensors), document["guidance"])
        restore_members(self.members, tensors, document["members"])
        self.step = document["step"]

    def results(self) -> list[TrainResult]:
        """Each member's network (its best or last weights) and history; closes the envs."""
        return [member.result(self.online, self.step, self.spec.config,
                              self.spec.finetune.frozen if frozen else ())
                for member, frozen in zip(self.members, self.optimizer.frozen_members,
                                          strict=True)]


def train_dqn(members: Sequence[Member], env_config: EnvConfig, config: DQNConfig,
              eval_seeds: Sequence[int], label: str = "dqn",
              checkpoints: Checkpoints | None = None, her_k: int = 0,
              finetune: FinetuneConfig | None = None,
              transferred: Sequence[str] = (),
              on_curve: CurveCallback | None = None) -> list[TrainResult]:
    """Train every member for ``config.total_steps`` env steps (its warm start included), all
    members in step as one stacked network sharing each update.

    Args:
        members: initial weights (fresh, or transferred), seeds and replay preloads; their
            warm starts must count the same env steps.
        env_config: the task to train on.
        config: DQN hyperparameters. With ``stop_on_threshold`` each member trains in a
            stack of its own, since each stops at its own step.
        eval_seeds: seeds of the greedy episodes behind each learning-curve point.
        label: name used in log lines (with each member's seed) and checkpoint file names.
        checkpoints: where to save the run's state every ``interval`` env steps and resume
            it from; the same run ends with the same weights whether or not it was
            interrupted.
        her_k: relabelled copies of each transition added to the buffer when its episode
            ends (HER "future", ``env_config.goal``'s reward); 0 for none.
        finetune: what stays frozen and when it unfreezes, and the teacher and anchor terms
            (:mod:`hindsight_rl.core.guidance`); None: everything trains, nothing guides.
        transferred: the parts the members' networks carry over from a pretrained one.
        on_curve: told every learning-curve point; returning True stops training there
            (:mod:`hindsight_rl.core.tuning` reports to Optuna and prunes through it).

    Returns:
        Each member's trained network (a new one-member network), history and env steps.
    """
    spec = RunSpec(env_config, config, eval_seeds, label, her_k,
                   finetune or FinetuneConfig(frozen=()), tuple(transferred), on_curve)
    stacks = [[member] for member in members] if config.stop_on_threshold else [members]
    with subnormals_flushed():
        return [result for stack in stacks for result in _train_stack(stack, spec, checkpoints)]


@contextmanager
def subnormals_flushed() -> Iterator[None]:
    """Subnormal floats computed as zero while training: Adam's second moments of rarely
    moving weights decay into that range, where this CPU is tens of times slower (an update
    ~25% slower overall, ``benchmarks/RESULTS.md``). Flushed in every run alike, so results
    stay reproducible."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def _train_stack(members: Sequence[Member], spec: RunSpec,
                 checkpoints: Checkpoints | None) -> list[TrainResult]:
    check_warm_starts(members, spec)
    from hindsight_rl.core.drqn import RecurrentStackRun  # builds on this module's run

    run = (RecurrentStackRun if members[0].network.recurrent else _StackRun)(members, spec)
    return train_stack(run, checkpoints, training_run_key(members, spec))


def train_stack(run: Any, checkpoints: Checkpoints | None, key: str) -> list[TrainResult]:
    """The training loop every algorithm shares, for a run object (DQN's ``_StackRun``,
    SAC's): ``act()`` one env step of every member, ``unfreeze()``, ``train()`` (the updates
    due at this step), ``play(evaluator, member)``, ``observe(means)``, ``checkpoint()``,
    ``restore()``, ``results()``. Learning-curve points, stopping at the threshold,
    checkpoints and progress are the same for all of them."""
    spec, config = run.spec, run.spec.config
    evaluator = GreedyEvaluator(spec.env_config, spec.eval_seeds)
    stop_at = env_info(spec.env_config).reward_threshold if config.stop_on_threshold else None
    label = f"{spec.label} seeds {'-'.join(str(m.seed) for m in run.members)}"
    saved = None if checkpoints is None else checkpoints.load(key, label)
    if saved is not None:
        run.restore(saved)
        solved = False
    else:
        solved = _evaluate(run, evaluator, stop_at)
    next_checkpoint = _next_multiple(run.step, checkpoints)
    with StepProgress(label, config.total_steps, start=run.step) as progress:
        while run.step < config.total_steps and not solved:
            run.act()
            step = run.step
            if spec.unfreezes_at(step) and any(run.optimizer.frozen_members):
                run.unfreeze()
            run.train()
            if step % config.eval_interval == 0 or step == config.total_steps:
                solved = _evaluate(run, evaluator, stop_at)
            if step >= next_checkpoint and step < config.total_steps and not solved:
                checkpoints.save(key, label, run.checkpoint())
                next_checkpoint = _next_multiple(step, checkpoints)
            progress.update(step, run.members[0].recent_return)
    evaluator.close()
    if checkpoints is not None:
        checkpoints.remove(key, label)
    return run.results()


def unfreeze_stalled(run: Any) -> None:
    """Members whose learning curve stalled with parts frozen: those parts train now."""
    patience = run.spec.finetune.unfreeze_patience
    if patience is None:
        return
    for member, frozen in zip(run.members, run.optimizer.frozen_members, strict=True):
        if frozen and stalled(member.curve(), patience, run.threshold):
            run.unfreeze([member.index])
            logger.info("%s: %s unfrozen at env step %d, %d learning-curve points "
                        "without a new best", member.label,
                        ", ".join(run.spec.finetune.frozen), run.step, patience)


def check_warm_starts(members: Sequence[Member] | Sequence[Any], spec: RunSpec) -> None:
    """Members step together, so their warm starts must count the same env steps."""
    start = {min(m.warm_start.steps_taken if m.warm_start is not None else 0,
                 spec.config.total_steps) for m in members}
    if len(start) != 1:
        raise ValueError(f"{spec.label}: members' warm starts count different env steps "
                         f"{start}; train them separately")


def _evaluate(run: Any, evaluator: GreedyEvaluator, stop_at: float | None) -> bool:
    """A learning-curve point for every member; True once they all reach ``stop_at`` or
    the run's ``on_curve`` says stop."""
    means = [member.evaluate(run.play(evaluator, member), run.played, run.step,
                             run.spec.config.total_steps) for member in run.members]
    run.observe(means)
    unfreeze_stalled(run)
    stop = run.spec.on_curve is not None and run.spec.on_curve(run.step, means)
    return stop or (stop_at is not None and min(means) >= stop_at)


def label_episode(buffer: ReplayBuffer, slots: list[int], terminated: bool,
                  config: TrainingConfig) -> None:
    """Hindsight labels of the episode that just ended: its returns-to-go (exact when it
    terminated) and n-step TD targets."""
    rewards, next_obs = buffer.reward[slots], buffer.next_obs[slots]
    episode = np.zeros(len(slots), np.int64)
    buffer.label(slots, returns_to_go(rewards, episode, config.gamma), valid=terminated,
                 bootstrap=n_step_bootstrap(rewards, next_obs, buffer.terminated[slots],
                                            episode, config.gamma, config.n_step))


def _add_relabelled(member: MemberRun, env_config: EnvConfig, her_k: int, gamma: float,
                    truncated: bool) -> None:
    """HER: the ended episode's transitions again, with goals it achieved later."""
    copies = relabel_future(member.buffer.episode(member.episode_slots, truncated),
                            env_config.goal, her_k, gamma, member.rng)
    member.buffer.extend(copies.transitions.obs, copies.transitions.action,
                         copies.transitions.reward, copies.transitions.next_obs,
                         copies.transitions.terminated, copies.return_to_go,
                         np.ones(len(copies), np.float32))


def _next_multiple(step: int, checkpoints: Checkpoints | None) -> float:
    """The env step after which the next checkpoint is due (never, without checkpoints)."""
    if checkpoints is None:
        return np.inf
    return (step // checkpoints.interval + 1) * checkpoints.interval


def training_run_key(members: Sequence[Member] | Sequence[Any], spec: RunSpec) -> str:
    """What identifies a run: settings, seeds, initial weights and warm-start data."""
    settings = {"env": spec.env_config.model_dump(), "dqn": spec.config.model_dump(),
                "seeds": [m.seed for m in members], "eval_seeds": list(spec.eval_seeds),
                "finetune": spec.finetune.model_dump(), "transferred": list(spec.transferred),
                "her_k": spec.her_k}
    arrays: list[np.ndarray | torch.Tensor] = []
    for member in members:
        arrays += member.tensors()
        if member.warm_start is not None:
            arrays += [a for a in vars(member.warm_start).values() if isinstance(a, np.ndarray)]
    return run_key(settings, arrays)


def train_burst(run: _StackRun | Any, loss_of_batch: Callable[[], torch.Tensor]) -> None:
    """``gradient_steps`` updates of every member on the losses ``loss_of_batch`` gives
    (each call a fresh sample), then one check that each mean loss and the weights are
    finite; records the losses, or stops the run naming the member, the step and its last
    finite loss."""
    config = run.spec.config
    total = torch.zeros(len(run.members))
    run.guidance.at_step(run.step, config.total_steps)
    for _ in range(config.gradient_steps):
        loss = loss_of_batch()
        run.optimizer.step(loss.sum())
        total += loss.detach()
    record_losses(run.members, (total / config.gradient_steps).tolist(),
                  finite_members(list(run.online.parameters())).tolist(), run.step, "loss",
                  "lower dqn.learning_rate or dqn.max_grad_norm")
