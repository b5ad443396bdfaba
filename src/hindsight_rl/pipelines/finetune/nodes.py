"""Nodes of the fine-tune stage: each arm for a group of training seeds, on the same budget."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from hindsight_rl.core.checkpoints import checkpoints_for
from hindsight_rl.core.config import EvalConfig, RuntimeConfig, TargetConfig
from hindsight_rl.core.plan import TransferPlan
from hindsight_rl.core.policy_file import Policy
from hindsight_rl.core.training import (
    curve_seeds,
    finetune_from,
    train_from_scratch,
    uniform_warm_start,
)


def finetune(source_policy: Policy, transfer_plan: dict[str, Any],
             hindsight_dataset: pd.DataFrame, target: TargetConfig, evaluation: EvalConfig,
             runtime: RuntimeConfig, seeds: tuple[int, ...]) -> list[Any]:
    """Transfer the chosen source's network and fine-tune it on the target as the transfer
    plan says (what is frozen, whether it teaches), with DQN plus the hindsight return-to-go
    loss, once per training seed (the seeds share each update; each trains as it would
    alone).

    The hindsight dataset preloads the replay buffers and counts against the step budget.
    An interrupted run resumes from its training checkpoint (``runtime.checkpoint_dir``).
    Returns each seed's policy and history in turn.
    """
    plan = TransferPlan.from_record(transfer_plan)
    runs = finetune_from(
        source_policy, target.env, target.training, plan.finetune(target.finetune), seeds,
        hindsight_dataset,
        curve_seeds(evaluation, target.training.eval_episodes),
        label=f"finetune {target.env.id}", checkpoints=checkpoints_for(runtime), her=target.her,
        encoder=target.encoder)
    return _per_seed_outputs(runs, seeds)


def train_scratch(source_policy: Policy, target: TargetConfig, evaluation: EvalConfig,
                  runtime: RuntimeConfig, seeds: tuple[int, ...]) -> list[Any]:
    """The control for each training seed: same network shape, budget and seed, nothing
    transferred (only the source network's layer widths are read). Each replay buffer
    starts from uniform-random rollouts as large as the hindsight dataset."""
    runs = train_from_scratch(
        target.env, target.network(source_policy.network.config), target.training,
        {seed: uniform_warm_start(target.env, target.collect.steps, seed) for seed in seeds},
        curve_seeds(evaluation, target.training.eval_episodes),
        label=f"scratch {target.env.id}", checkpoints=checkpoints_for(runtime))
    return _per_seed_outputs(runs, seeds)


def _per_seed_outputs(runs: list[tuple[Policy, pd.DataFrame]], seeds: Sequence[int]
                      ) -> list[Any]:
    """``[policy, history]`` of each seed in turn, the histories tagged with their seed."""
    return [output for (policy, history), seed in zip(runs, seeds, strict=True)
            for output in (policy, history.assign(seed=seed))]
