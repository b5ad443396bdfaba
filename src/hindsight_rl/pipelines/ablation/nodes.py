"""Nodes of the ablation: one run per target, arm and seed; a summary per target; a report."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from hindsight_rl.core.ablation import arm_target, markdown_report, run_table, summarise_runs
from hindsight_rl.core.ablation import verdicts as part_verdicts
from hindsight_rl.core.artefacts import input_versions
from hindsight_rl.core.checkpoints import checkpoints_for
from hindsight_rl.core.comparison import (
    eval_seeds,
    learning_curve_figure,
    score_policies,
    task_title,
)
from hindsight_rl.core.config import AblationConfig, EvalConfig, RuntimeConfig, TargetConfig
from hindsight_rl.core.envs import env_info
from hindsight_rl.core.policy_file import Policy
from hindsight_rl.core.training import (
    curve_seeds,
    finetune_from,
    hindsight_as_configured,
    train_from_scratch,
    uniform_warm_start,
)


def train_arm(source_policy: Policy, hindsight_dataset: pd.DataFrame, target: TargetConfig,
              ablation: AblationConfig, evaluation: EvalConfig, runtime: RuntimeConfig,
              target_name: str, arm: str, seeds: tuple[int, ...]) -> list[pd.DataFrame]:
    """One arm on the ablation's budget for a group of seeds (sharing each update):
    fine-tuning with the arm's parts (or the scratch control), then each final policy judged
    on the held-out evaluation episodes. Returns each seed's learning curve and judging
    returns as one table."""
    arm_config = ablation.arms[arm]
    config = arm_target(target, arm_config, ablation.budgets[target_name])
    label = f"ablation {target_name} {arm}"
    checkpoints = checkpoints_for(runtime)
    curve = curve_seeds(evaluation, config.dqn.eval_episodes)
    if arm_config.transfer:
        runs = finetune_from(
            source_policy, config.env, config.dqn, config.finetune, seeds,
            hindsight_as_configured(hindsight_dataset, config), curve, label, checkpoints,
            her=config.her)
    else:
        runs = train_from_scratch(
            config.env, source_policy.network.config, config.dqn,
            {seed: uniform_warm_start(config.env, config.collect.steps, seed) for seed in seeds},
            curve, label, checkpoints)
    names = [f"{label} seed {seed}" for seed in seeds]
    judged = score_policies({name: policy for name, (policy, _) in zip(names, runs, strict=True)},
                            config.env, evaluation)
    return [run_table(history, judged[name], int(policy.provenance["env_steps"]), arm, seed)
            for name, (policy, history), seed in zip(names, runs, seeds, strict=True)]


def summarise_target(target: TargetConfig, ablation: AblationConfig, evaluation: EvalConfig,
                     *runs: pd.DataFrame, target_name: str, arms: tuple[str, ...]
                     ) -> tuple[dict[str, Any], plt.Figure]:
    """Every arm's interquartile means with bootstrap intervals, the verdict on each part,
    and the arms' learning curves in one plot. ``runs`` are the run tables arm by arm (each
    carries its ``arm`` and ``seed``)."""
    threshold = env_info(target.env).reward_threshold
    budget = ablation.budgets[target_name]
    rng = np.random.default_rng(evaluation.seed)
    table = pd.concat(runs, ignore_index=True)
    summaries = summarise_runs(table, threshold, budget, evaluation, rng)
    title = task_title(target.env)
    figure = learning_curve_figure(
        {arm: rows[rows["metric"] == "eval_return"] for arm, rows in table.groupby("arm",
                                                                                sort=False)},
        f"Ablation: {title}", threshold, rng, summaries, budget)
    summary = {"name": target_name, "target": title, "budget": budget,
               "seeds": int(table["seed"].nunique()),
               "reward_threshold": threshold, "eval_episodes": len(eval_seeds(evaluation)),
               "arms": summaries,
               "input_versions": input_versions(
                   {f"{run['arm'].iat[0]}.seed_{run['seed'].iat[0]}.run": run for run in runs}),
               "verdicts": part_verdicts(summaries, {arm: ablation.arms[arm] for arm in arms}),
               "skipped": [arm for arm in ablation.arms if arm not in arms]}
    return summary, figure


def ablation_report(*summaries: dict[str, Any]) -> str:
    """All targets' tables and verdicts as one markdown page, in the order given."""
    return markdown_report(list(summaries))
