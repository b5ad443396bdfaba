"""Before the budget is spent: which pretrained source to transfer from, and how.

The probe plays each candidate source's transferred network on the target (every part whose
shape fits carried over) as a learning-curve point plays a network: its argmax, or the Boltzmann
temperature of ``dqn.acting_temperatures`` that scores higher
(:func:`~hindsight_rl.core.evaluation.best_acting`); and a uniform-random policy, on episodes
of their own seeds.
Like learning-curve points these are evaluation episodes: no training data comes from them,
so they do not count against the budget. Then:

- **Which source**: candidates whose every part fits the target (same spaces) and that beat
  chance on it rank first, by their probe return; the others follow in the configured order
  (only their trunk carries over, whose value a few probe episodes cannot show).
- **How**: when every part carries over and the transferred network beats chance, it becomes
  the teacher of fine-tuning (:mod:`hindsight_rl.core.guidance`) and nothing is frozen, so
  every part may adapt while the teacher keeps what transfer gave; otherwise the configured
  ``finetune.frozen`` parts stay fixed, each member's until its learning curve stalls short
  of the threshold (``finetune.unfreeze_patience``), and there is no teacher.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hindsight_rl.core.config import (
    PART_NAMES,
    Encoder,
    EnvConfig,
    FinetuneConfig,
    TargetConfig,
    with_encoder,
)
from hindsight_rl.core.envs import env_info
from hindsight_rl.core.evaluation import GreedyEvaluator, best_acting, evaluate_greedy, greedy
from hindsight_rl.core.networks import transfer_parts
from hindsight_rl.core.policy_file import Policy
from hindsight_rl.core.training import (
    continuous_behaviour,
    fresh_network,
    transferred_actor_critic,
)


@dataclass(frozen=True)
class Probe:
    """One candidate source on the target."""

    parts: tuple[str, ...]
    """Parts whose shapes fit the target network (all three: same spaces)."""
    jumpstart: float
    """Mean return of the transferred network on the probe episodes, played at
    :attr:`temperature`."""
    temperature: float = 0.0
    """The Boltzmann temperature that played it best (0.0: its argmax)."""

    @property
    def same_spaces(self) -> bool:
        return set(self.parts) == set(PART_NAMES)


@dataclass(frozen=True)
class TransferPlan:
    """What fine-tuning on one target does, and why (saved as the target's
    ``transfer_plan``)."""

    source: str
    """The chosen candidate."""
    parts: tuple[str, ...]
    """Parts carried over from it."""
    frozen: tuple[str, ...]
    """Parts kept out of the optimiser."""
    teacher: bool
    """Whether the transferred network teaches (same spaces, better than chance)."""
    random_return: float
    """Mean return of a uniform-random policy on the probe episodes: chance."""
    probes: dict[str, Probe]
    """Every candidate's probe, by name."""
    reason: str
    """The choice in words, for the report."""

    def finetune(self, config: FinetuneConfig) -> FinetuneConfig:
        """``config`` as this plan applies it: its frozen parts, the teacher on or off."""
        if self.teacher:
            return config.model_copy(update={"frozen": self.frozen})
        return config.model_copy(update={"frozen": self.frozen, "teacher_coef": 0.0,
                                         "unsolved_teacher_coef": 0.0})

    def record(self) -> dict[str, Any]:
        """JSON-able form."""
        record = asdict(self)
        record["probes"] = {name: asdict(probe) for name, probe in self.probes.items()}
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TransferPlan:
        probes = {name: Probe(tuple(p["parts"]), float(p["jumpstart"]),
                              float(p.get("temperature", 0.0)))
                  for name, p in record["probes"].items()}
        return cls(source=record["source"], parts=tuple(record["parts"]),
                   frozen=tuple(record["frozen"]), teacher=bool(record["teacher"]),
                   random_return=float(record["random_return"]), probes=probes,
                   reason=record["reason"])


def probe_sources(candidates: Mapping[str, Policy], target: EnvConfig,
                  seeds: Sequence[int], encoder: Encoder | None = None,
                  acting_temperatures: Sequence[float] = ()
                  ) -> tuple[dict[str, Probe], float]:
    """Each candidate's transferred network (with ``encoder``, if given) played on
    ``seeds`` by its best acting among the argmax and ``acting_temperatures`` (fractions
    of its value scale, as ``dqn.acting_temperatures``), and a uniform-random policy on the
    same seeds (its mean return: chance). Draws are seeded by ``seeds[0]``, so the probe
    repeats."""
    info = env_info(target)
    observations = np.zeros((0, info.obs_dim), np.float32)
    probes = {}
    evaluator = GreedyEvaluator(target, seeds)
    try:
        for name, policy in candidates.items():
            network = fresh_network(target, with_encoder(policy.network.config, encoder),
                                    seeds[0], observations)
            parts = tuple(transfer_parts(policy.network, network))
            returns, temperature = best_acting(
                evaluator, network.numpy_forward().q_function(0), acting_temperatures,
                info.reward_threshold, np.random.default_rng(seeds[0]))
            probes[name] = Probe(parts, float(returns.mean()), temperature)
        rng = np.random.default_rng(seeds[0])
        chance = evaluator.run(greedy(lambda obs: rng.random((len(obs), info.n_actions))))
    finally:
        evaluator.close()
    return probes, float(chance.mean())


def probe_continuous_sources(candidates: Mapping[str, Policy], target: TargetConfig,
                             seeds: Sequence[int]) -> tuple[dict[str, Probe], float]:
    """:func:`probe_sources` for a continuous-action target: each candidate carried into an
    actor (:func:`~hindsight_rl.core.training.transferred_actor_critic`) and played as it
    would collect the hindsight dataset, greedily (a Discrete source through
    ``target.source_actions``); chance is uniform within the action bounds."""
    info = env_info(target.env)
    observations = np.zeros((0, info.obs_dim), np.float32)
    rng = np.random.default_rng(seeds[0])
    probes = {}
    for name, policy in candidates.items():
        actor, _, parts = transferred_actor_critic(policy, target.env, target.sac, seeds[0],
                                                   observations)
        act = continuous_behaviour(policy, actor, target.source_actions, None, rng)
        returns = evaluate_greedy(target.env, lambda obs, act=act: np.stack([act(o) for o in obs]),
                                  seeds)
        probes[name] = Probe(tuple(parts), float(returns.mean()))
    chance = evaluate_greedy(target.env, lambda obs: rng.uniform(
        info.action_low, info.action_high, (len(obs), len(info.action_low))), seeds)
    return probes, float(chance.mean())


def choose_transfer(probes: Mapping[str, Probe], random_return: float,
                  target: TargetConfig) -> TransferPlan:
    """The source to transfer from and how (module docstring)."""
    informed = {name: probe for name, probe in probes.items()
                if probe.same_spaces and probe.jumpstart > random_return}
    if informed:
        source = max(informed, key=lambda name: informed[name].jumpstart)
    else:
        source = next(iter(probes))
    probe = probes[source]
    teacher = source in informed and target.finetune.teaches
    frozen = () if teacher else tuple(p for p in target.finetune.frozen if p in probe.parts)
    return TransferPlan(source=source, parts=probe.parts, frozen=frozen, teacher=teacher,
                        random_return=random_return, probes=dict(probes),
                        reason=_reason(source, probe, random_return, teacher, frozen,
                                       target.finetune.unfreeze_patience, len(probes),
                                       bool(informed)))


def _reason(source: str, probe: Probe, chance: float, teacher: bool,
            frozen: tuple[str, ...], patience: int | None, candidates: int,
            ranked: bool) -> str:
    acting = (f"Boltzmann, temperature {probe.temperature:.3g}" if probe.temperature
              else "argmax")
    played = (f"its transferred network scored {probe.jumpstart:.1f} on the probe episodes "
              f"({acting}; chance {chance:.1f})")
    if teacher:
        how = ("every part carried over and it beats chance: it teaches fine-tuning, nothing "
               "frozen")
    elif probe.same_spaces:
        how = "every part carried over but it does no better than chance: no teacher"
    else:
        how = (f"only the {', '.join(probe.parts)} fit the target's spaces: no teacher"
               + (f", {', '.join(frozen)} frozen" if frozen else "")
               + (f" until {patience} learning-curve points bring no new best short of the "
                  "threshold" if frozen and patience else ""))
    if candidates == 1:
        chosen = source
    elif ranked:
        chosen = f"{source} (the best of {candidates} candidates)"
    else:
        chosen = (f"{source} (the first of {candidates} candidates: none carries every part "
                  "and beats chance)")
    return f"Transfer from {chosen}: {played}; {how}."
