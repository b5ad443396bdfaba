"""Nodes of the evaluate stage."""

from __future__ import annotations

import logging
import re
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from hindsight_rl.core.comparison import (
    ARMS,
    eval_seeds,
    hindsight_returns_figure,
    html_report,
    learning_curve_figure,
    markdown_report,
    score_policies,
    summarise_arm,
    task_title,
    verdict,
)
from hindsight_rl.core.config import EvalConfig, TargetConfig, from_mapping
from hindsight_rl.core.envs import env_info
from hindsight_rl.core.policy_file import Policy

logger = logging.getLogger(__name__)


def evaluate(hindsight_dataset: pd.DataFrame, target: dict[str, Any],
             evaluation: dict[str, Any], **runs: Any
             ) -> tuple[dict[str, Any], plt.Figure, plt.Figure, str, str]:
    """Greedy play of every final policy on held-out seeds (from the policy-file bytes, with
    numpy alone), then fine-tuned vs scratch: final score, env steps to Gymnasium's reward
    threshold and area under the learning curve, as interquartile means over training seeds
    with bootstrap 95% intervals. Returns metrics, the learning-curve plot, the hindsight
    dataset's return distribution, and the report as markdown and as one HTML page.

    ``runs`` holds every seed branch's outputs, named ``<arm>_<policy|history>_seed_<n>``.
    """
    config = from_mapping(TargetConfig, target, "target")
    eval_config = from_mapping(EvalConfig, evaluation, "evaluation")
    threshold = env_info(config.env).reward_threshold
    rng = np.random.default_rng(eval_config.seed)
    arms = _by_arm(runs)
    summaries = {arm: summarise_arm(score_policies(policies, config.env, eval_config), history,
                                    threshold, config.dqn.total_steps, eval_config, rng)
                 for arm, (policies, history) in arms.items()}
    seeds = eval_seeds(eval_config)
    metrics = {"target": task_title(config.env),
               "env_id": config.env.id, "reward_threshold": threshold,
               "budget_env_steps": config.dqn.total_steps, "eval_episodes": len(seeds),
               "eval_seeds": [seeds[0], seeds[-1]], "arms": summaries,
               "verdict": verdict(summaries["finetuned"], summaries["scratch"])}
    logger.info("%s: %s", metrics["target"], metrics["verdict"])
    curves = learning_curve_figure({arm: history for arm, (_, history) in arms.items()},
                                   metrics["target"], threshold, rng)
    returns = hindsight_returns_figure(hindsight_dataset, metrics["target"], threshold)
    figures = {"Greedy return during training (mean, 95% bootstrap band over seeds)": curves,
               "Episode returns in the hindsight dataset": returns}
    return (metrics, curves, returns, markdown_report(metrics),
            html_report(metrics, figures))


_RUN = re.compile(r"(?P<arm>finetuned|scratch)_(?P<kind>policy|history)_seed_(?P<seed>\d+)")


def _by_arm(runs: dict[str, Any]) -> dict[str, tuple[dict[str, Policy], pd.DataFrame]]:
    """Per arm: policies keyed ``seed_<n>`` and the seeds' histories (which carry their
    ``seed`` column) stacked, as the comparison expects."""
    policies: dict[str, dict[str, Policy]] = {arm: {} for arm in ARMS}
    histories: dict[str, list[pd.DataFrame]] = {arm: [] for arm in ARMS}
    parsed = [(_RUN.fullmatch(key), value) for key, value in runs.items()]
    for match, value in sorted(parsed, key=lambda item: int(item[0]["seed"])):
        arm, seed = match["arm"], int(match["seed"])
        if match["kind"] == "policy":
            policies[arm][f"seed_{seed}"] = value
        else:
            histories[arm].append(value)
    return {arm: (policies[arm], pd.concat(histories[arm], ignore_index=True)) for arm in ARMS}
