"""The ablation: what each part of hindsight fine-tuning buys, arm against the arm it adds a
part to, over several seeds at equal env-step budgets."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hindsight_rl.core.comparison import (
    MetricSpec,
    clear_differences,
    summarise_arm,
    versions_line,
)
from hindsight_rl.core.config import ArmConfig, EvalConfig, HERConfig, TargetConfig

JUDGE = "judge_return"
"""Metric name of the final greedy episodes in a run table (beside the learning curve)."""

# Metric, its label, and whether a higher value is better: what a verdict weighs.
_METRICS: tuple[MetricSpec, ...] = (("steps_to_threshold", "env steps to threshold", False),
            ("final_return", "final return", True),
            ("auc", "area under the curve", True))


def arm_target(target: TargetConfig, arm: ArmConfig, budget: int) -> TargetConfig:
    """``target``'s settings as ``arm`` runs them, on ``budget`` env steps."""
    return target.model_copy(update={
        "dqn": target.dqn.model_copy(update={"total_steps": budget, "rtg_coef": arm.rtg_coef}),
        "finetune": target.finetune.model_copy(update={
            "frozen": arm.frozen, "unfreeze_patience": arm.unfreeze_patience,
            "teacher_coef": arm.teacher_coef,
            "unsolved_teacher_coef": (target.finetune.unsolved_teacher_coef
                                      if arm.teacher_coef > 0 else 0.0)}),
        "her": HERConfig(k=arm.her_k)})


def run_table(history: pd.DataFrame, judge_returns: np.ndarray, env_steps: int, arm: str,
              seed: int) -> pd.DataFrame:
    """One run as one long table: its learning curve and its final judging episodes."""
    judged = pd.DataFrame({"env_step": env_steps, "metric": JUDGE,
                           "value": np.asarray(judge_returns, np.float64)})
    table = pd.concat([history, judged], ignore_index=True)
    return table.astype({"env_step": "int64"}).assign(arm=arm, seed=seed)


def summarise_runs(runs: pd.DataFrame, threshold: float | None, budget: int,
                   config: EvalConfig, rng: np.random.Generator) -> dict[str, dict[str, Any]]:
    """Per arm (in order of appearance): interquartile means with bootstrap intervals of
    env steps to threshold, final score (the judging episodes) and area under the curve."""
    summaries = {}
    for arm, rows in runs.groupby("arm", sort=False):
        judged = rows[rows["metric"] == JUDGE]
        returns = {f"seed_{seed}": group["value"].to_numpy()
                   for seed, group in judged.groupby("seed")}
        summaries[str(arm)] = summarise_arm(returns, rows[rows["metric"] != JUDGE],
                                            threshold, budget, config, rng)
    return summaries


def part_verdict(arm: str, base: str, summaries: dict[str, dict[str, Any]]) -> str:
    """One line: does adding what ``arm`` adds to ``base`` help? Clear only where the 95%
    intervals of the interquartile means do not overlap."""
    better, worse = clear_differences(summaries[arm], summaries[base], _METRICS)
    if better and worse:
        word = f"mixed (better {', '.join(better)}; worse {', '.join(worse)})"
    elif better:
        word = f"helps (better {', '.join(better)})"
    elif worse:
        word = f"hurts (worse {', '.join(worse)})"
    else:
        word = "no clear difference (intervals overlap)"
    return f"{arm} vs {base}: {word}"


def verdicts(summaries: dict[str, dict[str, Any]], arms: dict[str, ArmConfig]) -> list[str]:
    """A verdict for every arm that names the arm it builds on and ran on this target."""
    return [part_verdict(name, arm.compare_to, summaries) for name, arm in arms.items()
            if arm.compare_to is not None and name in summaries
            and arm.compare_to in summaries]


def markdown_table(summaries: dict[str, dict[str, Any]]) -> list[str]:
    """One row per arm: the three figures with their intervals and the solved seeds."""
    lines = ["| arm | env steps to threshold IQM [95% CI] | final return IQM [95% CI] "
             "| AUC IQM [95% CI] | solved seeds |", "|---|---|---|---|---|"]
    for arm, summary in summaries.items():
        cells = [f"{summary[k]['iqm']:.1f} [{summary[k]['ci'][0]:.1f}, "
                 f"{summary[k]['ci'][1]:.1f}]" for k, _, _ in _METRICS]
        lines.append(f"| {arm} | {' | '.join(cells)} | "
                     f"{summary['solved_seeds']}/{summary['seeds']} |")
    return lines


def markdown_report(results: list[dict[str, Any]]) -> str:
    """Every target's table and verdicts (summaries naming their target), as one page."""
    lines = ["# Ablation: what each part of hindsight fine-tuning buys", ""]
    for result in results:
        lines += [f"## {result['name']}: {result['target']}", "",
                  f"Budget {result['budget']} env steps per run, {result['seeds']} seeds per "
                  f"arm, reward threshold {result['reward_threshold']}; final return over "
                  f"{result['eval_episodes']} held-out greedy episodes per policy.", "",
                  versions_line(result.get("input_versions", {})), ""]
        lines += markdown_table(result["arms"])
        lines += ["", *[f"- {line}" for line in result["verdicts"]]]
        skipped = result.get("skipped") or []
        if skipped:
            lines += [f"- not run on this target: {', '.join(skipped)}"]
        lines.append("")
    lines += ["Seeds that never reach the threshold count as the full budget in the "
              "steps-to-threshold statistic.", ""]
    return "\n".join(lines)
