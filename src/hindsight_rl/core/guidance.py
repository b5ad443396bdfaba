"""What keeps a fine-tuned network near what it was given, so that transfer keeps its gains.

Two terms, added to each member's DQN loss:

- **The teacher** (DQfD's large-margin loss, Hester et al. 2018): when every part was
  transferred (same spaces), the transferred network is a teacher whose greedy action should
  stay the student's: ``max_a [Q(s,a) + margin·(a ≠ a_T)] − Q(s,a_T)``, zero once the student
  ranks the teacher's action first by ``margin``. Its score is the member's first
  learning-curve point (the transferred network's own, on the curve's episodes). Whenever a
  later point of the member is higher, the member's weights of that moment become its
  teacher and that point the teacher's score: the teacher is always the best policy the
  member has shown, so fine-tuning keeps what transfer gave and what it gained since, and
  a student that does better is never held back to a worse teacher. Its weight depends on
  that score: a solved teacher (at or above the reward threshold) is kept at full weight
  λ, since there is nothing to gain but to keep it; an unsolved one guides at a lighter
  weight, where a TD error larger than the weight overrules it (the Huber loss's gradient
  is at most 1), so the student can pass it (MountainCar with stronger gravity: at full
  weight the student stays at the teacher's −112 throughout, ``docs/transfer.md``).
  "Solved" is not "optimal" (a MountainCar teacher at −99 passes −110 where scratch reaches
  −81), so the weight fades linearly to 0 over the budget (``teacher_fades_from``) and the
  final policy is the TD loss's own; a member whose last curve point fell below what
  transfer gave (its first point) has its teacher back at full weight until it recovers.
  With ``teacher_loss: softmax`` the teacher's Boltzmann policy is distilled instead
  (kickstarting, Schmitt et al. 2018): the cross-entropy from ``softmax(Q_T / t)`` to
  ``softmax(Q / t)`` at a temperature in the teacher's value scale. It is blind to a shift
  of all of a state's values, so the TD loss may recalibrate them to the target while the
  ranking and the gaps that a Boltzmann player draws by stay the teacher's (DoorKey-8x8 from
  the 6x6 room: without it the updates take the transferred play apart within 5k steps,
  ``benchmarks/RESULTS.md``).
  A SAC actor's teacher is imitated rather than ranked: the squared distance between the
  student's and the teacher's mean actions (in units of the action's half-range), weighted
  by λ times the batch's mean |Q| so that λ means the same whatever the task's reward scale
  (TD3+BC's normalisation, Fujimoto & Gu 2021).
- **The anchor** (L2-SP, Li et al. 2018): ``α·Σ(θ − θ₀)²`` over the transferred parameters
  that train, pulling them towards where they started.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from hindsight_rl.core.actor_critic import GaussianActor
from hindsight_rl.core.config import PART_NAMES, FinetuneConfig
from hindsight_rl.core.networks import QNetwork


def large_margin_loss(q: torch.Tensor, teacher_action: torch.Tensor,
                      margin: float) -> torch.Tensor:
    """Each member's mean of ``max_a [Q(s,a) + margin·(a ≠ a_T)] − Q(s,a_T)`` over its rows;
    ``q`` is ``(members, batch, actions)``, ``teacher_action`` ``(members, batch, 1)``."""
    margins = torch.full_like(q, margin).scatter_(2, teacher_action, 0.0)
    return ((q + margins).amax(dim=2) - q.gather(2, teacher_action).squeeze(2)).mean(dim=1)


def distillation_loss(q: torch.Tensor, teacher_q: torch.Tensor,
                      fraction: float) -> torch.Tensor:
    """Each member's mean over its rows of the cross-entropy from ``softmax(Q_T / t)`` to
    ``softmax(Q / t)``, with ``t`` = ``fraction`` × the member's mean ``|max_a Q_T|`` on
    the batch: a temperature in the teacher's own value scale."""
    scale = teacher_q.amax(dim=2, keepdim=True).abs().mean(dim=1, keepdim=True)
    temperature = (fraction * scale).clamp_min(1e-8)
    target = torch.softmax(teacher_q / temperature, dim=2)
    return -(target * torch.log_softmax(q / temperature, dim=2)).sum(dim=2).mean(dim=1)


def imitation_loss(action: torch.Tensor, teacher_action: torch.Tensor,
                   scale: torch.Tensor) -> torch.Tensor:
    """Each member's mean over its rows of ``Σ ((a − a_T) / scale)²``: how far a student
    actor's mean actions are from its teacher's, in units of the action's half-range."""
    return ((action - teacher_action) / scale).pow(2).sum(dim=2).mean(dim=1)


class Guidance:
    """The teacher and anchor terms of one stacked run (see the module docstring), for a
    Q-network or a SAC actor."""

    def __init__(self, online: QNetwork | GaussianActor, finetune: FinetuneConfig,
                 transferred: Sequence[str], threshold: float | None = None) -> None:
        members = online.members
        self.teacher: QNetwork | GaussianActor | None = None
        if finetune.teaches and set(transferred) == set(PART_NAMES):
            self.teacher = type(online).stack([online.member(k) for k in range(members)])
            self.teacher.requires_grad_(False)
        self.solved_coef, self.unsolved_coef = (finetune.teacher_coef,
                                                finetune.unsolved_teacher_coef)
        self.margin, self.threshold = finetune.teacher_margin, threshold
        self.softmax = finetune.teacher_loss == "softmax"
        self.teacher_temperature = finetune.teacher_temperature
        self.fades_from = finetune.teacher_fades_from
        self.fade = 1.0
        """The factor on λ at this point of the budget, for members that have not regressed."""
        self.transferred_score: list[float | None] = [None] * members
        """Each member's first learning-curve point: what transfer gave it."""
        self.regressed = torch.zeros(members, dtype=torch.bool)
        """Members whose last curve point fell below their transferred score."""
        self.teacher_score: list[float | None] = [None] * members
        """Each member's best learning-curve point: its teacher's score."""
        self.weight = torch.full((members,), self.unsolved_coef)
        """Each member's λ, by its teacher's score."""
        self.anchor_coef = finetune.anchor_coef
        anchored = online.part_parameters(
            [part for part in transferred if part not in finetune.frozen])
        self.anchors = ([(p, p.detach().clone()) for p in anchored]
                        if self.anchor_coef > 0 else [])

    @property
    def active(self) -> bool:
        return self.teacher is not None or bool(self.anchors)

    def loss(self, q: torch.Tensor, obs: torch.Tensor,
             q_scale: torch.Tensor | None = None) -> torch.Tensor | float:
        """The members' teacher and anchor terms ``(members,)`` for the student's output on
        observations ``obs``: Q-values ``q`` of a Q-network, or a SAC actor's mean actions
        (then ``q_scale``, each member's mean |Q| on the batch, scales the teacher's
        weight)."""
        total: torch.Tensor | float = 0.0
        if self.teacher is not None:
            fade = torch.where(self.regressed, 1.0, self.fade)
            if isinstance(self.teacher, GaussianActor):
                with torch.no_grad():
                    teacher_action = self.teacher.deterministic(obs)
                term = imitation_loss(q, teacher_action, self.teacher.action_scale)
                term = term * (1.0 if q_scale is None else q_scale)
            else:
                with torch.no_grad():
                    teacher_q = self.teacher(obs)
                if self.softmax:
                    term = distillation_loss(q, teacher_q, self.teacher_temperature)
                else:
                    term = large_margin_loss(q, teacher_q.argmax(dim=2, keepdim=True),
                                             self.margin)
            total = total + (fade * self.weight) * term
        for parameter, start in self.anchors:
            total = total + self.anchor_coef * (parameter - start).pow(2).flatten(1).sum(dim=1)
        return total

    def at_step(self, step: int, total_steps: int) -> None:
        """Fades the teacher for the updates at env step ``step`` of ``total_steps``."""
        if self.fades_from is not None:
            left = 1.0 - step / total_steps
            self.fade = min(1.0, left / (1.0 - self.fades_from))

    def observe(self, k: int, curve_point: float, online: QNetwork | GaussianActor) -> None:
        """Member ``k``'s new learning-curve point of ``online``: the first is the teacher's
        score; a higher one makes the member's current weights its teacher; one below the
        first brings the teacher back at full weight."""
        if self.teacher is None:
            return
        if self.transferred_score[k] is None:
            self.transferred_score[k] = curve_point
        self.regressed[k] = curve_point < self.transferred_score[k]
        if self.teacher_score[k] is None:
            self.teacher_score[k] = curve_point
        elif curve_point > self.teacher_score[k]:
            self.teacher_score[k] = curve_point
            with torch.no_grad():
                for mine, theirs in zip(self.teacher.parameters(), online.parameters(),
                                        strict=True):
                    mine[k].copy_(theirs[k])
        self.weight[k] = self._weight(self.teacher_score[k])

    def _weight(self, score: float) -> float:
        solved = self.threshold is not None and score >= self.threshold
        return self.solved_coef if solved else self.unsolved_coef

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors: dict[str, torch.Tensor] = {}
        if self.teacher is not None:
            tensors.update({f"teacher.{k}": v for k, v in self.teacher.state_dict().items()})
        tensors.update({f"anchor.{i}": start for i, (_, start) in enumerate(self.anchors)})
        return tensors, {"teacher_score": self.teacher_score,
                         "transferred_score": self.transferred_score,
                         "regressed": self.regressed.tolist()}

    def load_state(self, tensors: dict[str, torch.Tensor], document: dict[str, Any]) -> None:
        if self.teacher is not None:
            self.teacher.load_state_dict({k.removeprefix("teacher."): v
                                          for k, v in tensors.items()
                                          if k.startswith("teacher.")})
        for i, (_, start) in enumerate(self.anchors):
            start.copy_(tensors[f"anchor.{i}"])
        self.teacher_score = document["teacher_score"]
        self.transferred_score = document["transferred_score"]
        self.regressed = torch.tensor(document["regressed"], dtype=torch.bool)
        for k, score in enumerate(self.teacher_score):
            if score is not None:
                self.weight[k] = self._weight(score)
