"""Nodes of the evaluate stage."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from hindsight_rl.core.artefacts import input_versions
from hindsight_rl.core.comparison import (
    Judged,
    eval_seeds,
    hindsight_returns_figure,
    html_report,
    incomparable,
    judge_policies,
    learning_curve_figure,
    markdown_report,
    record_episodes,
    summarise_arm,
    task_title,
    verdict,
)
from hindsight_rl.core.config import EvalConfig, TargetConfig
from hindsight_rl.core.envs import env_info, registered_time_limit
from hindsight_rl.core.trajectories import env_steps_of
from hindsight_rl.pipelines.branches import ARMS, run_inputs, runs_by_arm, seed_branch

logger = logging.getLogger(__name__)


def evaluate(hindsight_dataset: pd.DataFrame, transfer_plan: dict[str, Any],
             target: TargetConfig, evaluation: EvalConfig, *runs: Any, seeds: tuple[int, ...]
             ) -> tuple[Any, ...]:
    """Greedy play of every final policy on held-out seeds (from the policy-file bytes, with
    numpy alone), then fine-tuned vs scratch: final score, env steps to Gymnasium's reward
    threshold and area under the learning curve, as interquartile means over training seeds
    with bootstrap 95% intervals. Returns metrics, the learning-curve plot, the hindsight
    dataset's return distribution, the report as markdown and as one HTML page, and one
    recorded episode (a GIF) per final policy, in the order of
    :func:`~hindsight_rl.pipelines.branches.episode_outputs`.

    ``runs`` are every seed branch's policies and histories, in the order of
    :func:`~hindsight_rl.pipelines.branches.run_inputs`.
    """
    threshold = env_info(target.env).reward_threshold
    rng = np.random.default_rng(evaluation.seed)
    arms = {arm: ({seed_branch(seed): policy for seed, (policy, _) in by_seed.items()},
                  pd.concat([history for _, history in by_seed.values()], ignore_index=True))
            for arm, by_seed in runs_by_arm(seeds, runs).items()}
    chance = transfer_plan["random_return"]
    judged = {arm: judge_policies(policies, target.env, evaluation)
              for arm, (policies, _) in arms.items()}
    summaries = {arm: summarise_arm({name: j.returns for name, j in judged[arm].items()},
                                    history, threshold, target.training.total_steps, evaluation,
                                    rng, chance, _successes(judged[arm]),
                                    _stuck(judged[arm]))
                 for arm, (_, history) in arms.items()}
    reasons = incomparable({arm: history for arm, (_, history) in arms.items()},
                           target.training.total_steps, env_steps_of(hindsight_dataset),
                           target.collect.steps, env_info(target.env).max_episode_steps,
                           registered_time_limit(target.env))
    eval_seeds_ = eval_seeds(evaluation)
    metrics = {"target": task_title(target.env),
               "env_id": target.env.id, "reward_threshold": threshold,
               "budget_env_steps": target.training.total_steps, "eval_episodes": len(eval_seeds_),
               "eval_seeds": [eval_seeds_[0], eval_seeds_[-1]], "arms": summaries,
               "comparable": not reasons,
               "verdict": verdict(summaries["finetuned"], summaries["scratch"], reasons),
               "transfer_plan": transfer_plan,
               "input_versions": input_versions({"hindsight_dataset": hindsight_dataset,
                                                 **dict(zip(run_inputs(seeds), runs,
                                                            strict=True))})}
    logger.info("%s: %s", metrics["target"], metrics["verdict"])
    curves = learning_curve_figure({arm: history for arm, (_, history) in arms.items()},
                                   metrics["target"], threshold, rng, summaries,
                                   target.training.total_steps)
    returns = hindsight_returns_figure(hindsight_dataset, metrics["target"], threshold)
    figures = {"Greedy return during training (IQM over seeds with its 95% bootstrap band) "
               "and env steps to the threshold": curves,
               "Episode returns in the hindsight dataset": returns}
    episodes = record_episodes({f"{seed_branch(seed)} {arm}": arms[arm][0][seed_branch(seed)]
                                for seed in seeds for arm in ARMS}, target.env, evaluation)
    return (metrics, curves, returns, markdown_report(metrics),
            html_report(metrics, figures, episodes), *(gif for gif, _ in episodes.values()))


def _stuck(judged: dict[str, Judged]) -> dict[str, int] | None:
    """Each seed's judged episodes stuck in a short cycle; None where the task defines no
    success."""
    if any(j.stuck is None for j in judged.values()):
        return None
    return {name: j.stuck for name, j in judged.items()}


def _successes(judged: dict[str, Judged]) -> dict[str, np.ndarray] | None:
    """Each seed's successes on its judged episodes; None where the task defines none."""
    if any(j.successes is None for j in judged.values()):
        return None
    return {name: j.successes for name, j in judged.items()}
