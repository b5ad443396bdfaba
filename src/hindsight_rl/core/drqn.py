"""Recurrent DQN for a network with a ``gru`` encoder: Double DQN over R2D2's sequence replay
(Kapturowski et al. 2019), acting that carries each member's hidden state through its
episode.

Only what memory changes differs from :mod:`hindsight_rl.core.dqn`, whose loop, learning
curve, checkpoints, frozen parts and anchor this run shares: each member keeps whole
episodes (:class:`~hindsight_rl.core.sequence_replay.SequenceReplay`), an update unrolls
the network over windows of them from a zero state, the first ``sequence.burn_in`` steps of
a window only warm that state (no loss), and the actor's state is zeroed when its episode
starts. Return-to-go labels and HER need single transitions and are refused by the config.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from hindsight_rl.core.checkpoints import Checkpoint
from hindsight_rl.core.config import DQNConfig
from hindsight_rl.core.dqn import Member, RunSpec, WarmStart, _MemberRun, _StackRun, train_burst
from hindsight_rl.core.errors import HindsightRLError
from hindsight_rl.core.guidance import Guidance
from hindsight_rl.core.networks import QNetwork, RecurrentNumpyStack
from hindsight_rl.core.sequence_replay import SequenceBatch, SequenceReplay


class SequenceTensors(NamedTuple):
    """Every member's :class:`SequenceBatch` stacked along a leading ``members`` axis, as
    tensors (see there for each field)."""

    obs: torch.Tensor  # (M, B, T + 1, obs_dim)
    action: torch.Tensor  # (M, B, T) int64
    learn: torch.Tensor  # (M, B, T) float: 1 where the step carries a loss
    reset_hidden: torch.Tensor  # (M, B, T + 1) bool
    bootstrap_reward: torch.Tensor  # (M, B, T)
    bootstrap_step: torch.Tensor  # (M, B, T) int64
    discount: torch.Tensor  # (M, B, T)

    @classmethod
    def stack(cls, batches: list[SequenceBatch]) -> SequenceTensors:
        def stacked(name: str) -> torch.Tensor:
            return torch.from_numpy(np.stack([getattr(batch, name) for batch in batches]))
        return cls(obs=stacked("obs"), action=stacked("action"),
                   learn=stacked("learn").float(), reset_hidden=stacked("reset_hidden"),
                   bootstrap_reward=stacked("bootstrap_reward"),
                   bootstrap_step=stacked("bootstrap_step"), discount=stacked("discount"))


def at_positions(values: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """``values`` ``(M, B, T + 1, A)`` read at ``positions`` ``(M, B, T)`` along the steps."""
    index = positions[..., None].expand(-1, -1, -1, values.shape[3])
    return values.gather(2, index)


def drqn_loss(batch: SequenceTensors, online: QNetwork, target: QNetwork, config: DQNConfig,
              guidance: Guidance | None = None) -> torch.Tensor:
    """Each member's loss ``(K,)``: the mean Huber n-step TD error over the steps that learn
    (past the burn-in, not padding), the target valued as Double DQN values it, plus the
    anchor. Both networks unroll over the whole window from a zero state."""
    q, _ = online.sequence(batch.obs, reset=batch.reset_hidden)
    q_taken = q[:, :, :-1].gather(3, batch.action[..., None]).squeeze(3)
    with torch.no_grad():
        next_q = at_positions(target.sequence(batch.obs, reset=batch.reset_hidden)[0],
                              batch.bootstrap_step)
        if config.double_dqn:
            best = at_positions(q.detach(), batch.bootstrap_step).argmax(3, keepdim=True)
            next_value = next_q.gather(3, best).squeeze(3)
        else:
            next_value = next_q.amax(dim=3)
        td_target = batch.bootstrap_reward + batch.discount * next_value
    errors = F.smooth_l1_loss(q_taken, td_target, reduction="none") * batch.learn
    loss = errors.sum(dim=(1, 2)) / batch.learn.sum(dim=(1, 2)).clamp(min=1.0)
    if guidance is not None and guidance.active:
        loss = loss + guidance.loss(q, batch.obs)
    return loss


def episode_ends(warm_start: WarmStart) -> np.ndarray:
    """Which rows of a warm start end their episode: a termination, the next row starting
    another episode, or the last row (the collection stopped there)."""
    ids = (np.arange(len(warm_start)) if warm_start.episode_id is None
           else warm_start.episode_id)
    ends = np.ones(len(ids), bool)
    ends[:-1] = ids[1:] != ids[:-1]
    return ends | warm_start.terminated.astype(bool)


class RecurrentMemberRun(_MemberRun):
    """A recurrent DQN member: whole episodes in a sequence replay, ε-greedy on the Q-values
    its acting network computes with its memory of the episode."""

    def new_buffer(self, spec: RunSpec, obs_dim: int, action_dim: int | None
                   ) -> SequenceReplay:
        sequence = spec.config.sequence
        return SequenceReplay(spec.config.buffer_size, obs_dim, self.rng, spec.config.gamma,
                              sequence.burn_in, sequence.length, spec.config.n_step,
                              learn_from_episode_start=True)

    def preload(self, warm_start: WarmStart, spec: RunSpec) -> None:
        """The warm start's episodes into the replay, row by row."""
        terminated = warm_start.terminated.astype(bool)
        for i, ends in enumerate(episode_ends(warm_start)):
            self.buffer.add(warm_start.obs[i], int(warm_start.action[i]),
                            float(warm_start.reward[i]), warm_start.next_obs[i],
                            bool(terminated[i]), bool(ends and not terminated[i]))

    def store(self, action: int | np.ndarray, reward: float, next_obs: np.ndarray,
              terminated: bool, truncated: bool) -> int:
        return self.buffer.add(self.obs, action, reward, next_obs, terminated, truncated)

    def finish_episode(self, terminated: bool, truncated: bool, spec: RunSpec) -> None:
        """Nothing to label: sequence replay reads whole episodes, with no return-to-go."""

    def env_action(self, stored: np.ndarray) -> int:
        return int(stored)


class RecurrentStackRun(_StackRun):
    """:class:`~hindsight_rl.core.dqn._StackRun` for recurrent members."""

    member_run = RecurrentMemberRun
    acting: RecurrentNumpyStack

    def __init__(self, members: list[Member], spec: RunSpec) -> None:
        super().__init__(members, spec)
        if self.guidance.teacher is not None:
            raise HindsightRLError(
                f"{spec.label}: the teacher plays single observations, and a gru network "
                "reads episodes; set finetune.teacher_coef and unsolved_teacher_coef to 0")

    def act(self) -> None:
        """One env step of every member; a member whose episode ended forgets it."""
        super().act()
        for member in self.members:
            if not member.episode_slots:
                self.acting.reset(member.index)

    def burst(self) -> None:
        """One training burst on windows sampled from each member's episodes."""
        batch_size = self.spec.config.batch_size

        def loss_of_batch() -> torch.Tensor:
            batch = SequenceTensors.stack([member.buffer.sample(batch_size)
                                           for member in self.members])
            return drqn_loss(batch, self.online, self.target, self.spec.config,
                             self.guidance)
        train_burst(self, loss_of_batch)

    def checkpoint(self) -> Checkpoint:
        """The loop's state and the actors' memory of their episodes."""
        saved = super().checkpoint()
        tensors = {**saved.tensors, "acting_hidden": torch.from_numpy(self.acting.hidden)}
        return Checkpoint(tensors, saved.document)

    def restore(self, checkpoint: Checkpoint) -> None:
        super().restore(checkpoint)
        self.acting.hidden = checkpoint.tensors["acting_hidden"].numpy().copy()

