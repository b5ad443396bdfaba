"""Nodes of the ablation: one run per target, arm and seed; a summary per target; a report."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from hindsight_rl.core.ablation import arm_target, markdown_report, run_table, summarise_runs
from hindsight_rl.core.ablation import verdicts as part_verdicts
from hindsight_rl.core.checkpoints import checkpoints_for
from hindsight_rl.core.comparison import (
    eval_seeds,
    learning_curve_figure,
    score_policies,
    task_title,
)
from hindsight_rl.core.config import (
    AblationConfig,
    EvalConfig,
    RuntimeConfig,
    TargetConfig,
    from_mapping,
)
from hindsight_rl.core.envs import env_info
from hindsight_rl.core.policy_file import Policy
from hindsight_rl.core.training import (
    curve_seeds,
    finetune_from,
    hindsight_as_configured,
    network_config_of,
    train_from_scratch,
    uniform_warm_start,
)


def train_arm(pretrained_policy: Policy, hindsight_dataset: pd.DataFrame,
              target: dict[str, Any], ablation: dict[str, Any], evaluation: dict[str, Any],
              runtime: dict[str, Any], target_name: str, arm: str, seeds: tuple[int, ...]
              ) -> list[pd.DataFrame]:
    """One arm on the ablation's budget for a group of seeds (sharing each update):
    fine-tuning with the arm's parts (or the scratch control), then each final policy judged
    on the held-out evaluation episodes. Returns each seed's learning curve and judging
    returns as one table."""
    plan = from_mapping(AblationConfig, ablation, "ablation")
    arm_config = plan.arms[arm]
    config = arm_target(from_mapping(TargetConfig, target, "target"), arm_config,
                        plan.budgets[target_name])
    eval_config = from_mapping(EvalConfig, evaluation, "evaluation")
    label = f"ablation {target_name} {arm}"
    checkpoints = checkpoints_for(from_mapping(RuntimeConfig, runtime, "runtime"))
    curve = curve_seeds(eval_config, config.dqn.eval_episodes)
    if arm_config.transfer:
        runs = finetune_from(
            pretrained_policy, config.env, config.dqn, config.finetune, seeds,
            hindsight_as_configured(hindsight_dataset, config), curve, label, checkpoints,
            her=config.her)
    else:
        runs = train_from_scratch(
            config.env, network_config_of(pretrained_policy.network), config.dqn,
            {seed: uniform_warm_start(config.env, config.collect.steps, seed) for seed in seeds},
            curve, label, checkpoints)
    names = [f"{label} seed {seed}" for seed in seeds]
    judged = score_policies({name: policy for name, (policy, _) in zip(names, runs, strict=True)},
                            config.env, eval_config)
    return [run_table(history, judged[name], int(policy.provenance["env_steps"]), arm, seed)
            for name, (policy, history), seed in zip(names, runs, seeds, strict=True)]


def summarise_target(target: dict[str, Any], ablation: dict[str, Any],
                     evaluation: dict[str, Any], target_name: str, **runs: pd.DataFrame
                     ) -> tuple[dict[str, Any], plt.Figure]:
    """Every arm's interquartile means with bootstrap intervals, the verdict on each part,
    and the arms' learning curves in one plot. ``runs`` are named ``<arm>_seed_<n>``."""
    config = from_mapping(TargetConfig, target, "target")
    plan = from_mapping(AblationConfig, ablation, "ablation")
    eval_config = from_mapping(EvalConfig, evaluation, "evaluation")
    threshold = env_info(config.env).reward_threshold
    budget = plan.budgets[target_name]
    rng = np.random.default_rng(eval_config.seed)
    table = pd.concat([runs[key] for key in sorted(runs, key=_arm_then_seed(plan))],
                      ignore_index=True)
    summaries = summarise_runs(table, threshold, budget, eval_config, rng)
    arms = plan.arms_for(config)
    title = task_title(config.env)
    figure = learning_curve_figure(
        {arm: rows[rows["metric"] == "eval_return"] for arm, rows in table.groupby("arm",
                                                                                sort=False)},
        f"Ablation: {title}", threshold, rng)
    summary = {"target": title, "budget": budget, "seeds": len(plan.seeds),
               "reward_threshold": threshold, "eval_episodes": len(eval_seeds(eval_config)),
               "arms": summaries, "verdicts": part_verdicts(summaries, arms),
               "skipped": [arm for arm in plan.arms if arm not in arms]}
    return summary, figure


def ablation_report(**summaries: dict[str, Any]) -> str:
    """All targets' tables and verdicts as one markdown page (``<target>_summary`` inputs)."""
    return markdown_report({name.removesuffix("_summary"): summary
                            for name, summary in summaries.items()})


_RUN = re.compile(r"(?P<arm>.+)_seed_(?P<seed>\d+)")


def _arm_then_seed(plan: AblationConfig) -> Callable[[str], tuple[int, int]]:
    """Sort key of ``<arm>_seed_<n>`` run names: arms in config order, then seeds."""
    order = list(plan.arms)

    def key(name: str) -> tuple[int, int]:
        match = _RUN.fullmatch(name)
        return order.index(match["arm"]), int(match["seed"])
    return key
