"""The transfer suite's report: Taylor & Stone's (2009) transfer metrics of every source →
target pair, fine-tuned against scratch, as one table and one heat map.

Per pair: the **jumpstart** (the learning curve's first point), **asymptotic performance**
(the final policy's return on the held-out episodes), **total reward** (the area under the
learning curve) and the **time-to-threshold ratio** (fine-tuned ÷ scratch env steps to the
reward threshold; a seed that never reaches it counts as the whole budget), each as the
interquartile mean over seeds with its bootstrap 95% interval. Returns are also shown on the
scale where chance (a uniform-random policy) is 0 and the threshold 1, which makes pairs of
different environments comparable in the heat map.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from hindsight_rl.core.comparison import clear_differences, versions_line

METRICS = (("jumpstart", "jumpstart"), ("final_return", "asymptotic return"),
           ("auc", "total reward (AUC)"))
"""Return-valued metrics: summary key and label."""


def pair_row(name: str, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """One pair's figures from its target's ``transfer_metrics``."""
    arms, plan = metrics["arms"], metrics["transfer_plan"]
    chance, threshold = plan["random_return"], metrics["reward_threshold"]
    row: dict[str, Any] = {"pair": name, "source": plan["source"], "target": metrics["target"],
                           "plan": plan["reason"], "chance": chance, "threshold": threshold,
                           "input_versions": metrics.get("input_versions", {})}
    for key, _ in METRICS:
        for arm in ("finetuned", "scratch"):
            row[f"{key}.{arm}"] = arms[arm][key]
        row[f"{key}.gain"] = _gain(arms, key, chance, threshold)
    steps = {arm: arms[arm]["steps_to_threshold"]["iqm"] for arm in ("finetuned", "scratch")}
    row["time_ratio"] = steps["finetuned"] / steps["scratch"] if steps["scratch"] else None
    for arm in ("finetuned", "scratch"):
        row[f"steps.{arm}"] = arms[arm]["steps_to_threshold"]
        row[f"normalised_auc.{arm}"] = arms[arm].get("normalised_auc", {}).get("iqm")
    better, worse = clear_differences(arms["finetuned"], arms["scratch"])
    row["verdict"] = ("hurt" if worse and not better else "helped" if better and not worse
                      else "mixed" if better else "no clear difference")
    row["clearly_better"], row["clearly_worse"] = better, worse
    return row


def _gain(arms: Mapping[str, Any], key: str, chance: float, threshold: float | None
          ) -> float | None:
    """Fine-tuned minus scratch IQM on the chance-to-threshold scale (uncapped)."""
    if threshold is None or threshold <= chance:
        return None
    scale = threshold - chance
    return (arms["finetuned"][key]["iqm"] - arms["scratch"][key]["iqm"]) / scale


def heatmap(rows: list[dict[str, Any]]) -> plt.Figure:
    """Pairs × metrics: the fine-tuned arm's gain over scratch on the chance-to-threshold
    scale (jumpstart, asymptotic return, AUC) and the log2 time-to-threshold ratio, green
    where transfer helps, red where it hurts, each cell annotated with its value."""
    columns = [label for _, label in METRICS] + ["time to threshold (ratio)"]
    values = np.full((len(rows), len(columns)), np.nan)
    text = [["" for _ in columns] for _ in rows]
    for i, row in enumerate(rows):
        for j, (key, _) in enumerate(METRICS):
            gain = row[f"{key}.gain"]
            if gain is not None:
                values[i, j] = np.clip(gain, -1, 1)
                text[i][j] = f"{gain:+.2f}"
        if row["time_ratio"]:
            values[i, -1] = np.clip(-np.log2(row["time_ratio"]) / 3, -1, 1)
            text[i][-1] = f"{row['time_ratio']:.2f}×"
    figure, axes = plt.subplots(figsize=(8, 0.6 * len(rows) + 1.6))
    image = axes.imshow(values, cmap="RdYlGn", vmin=-1, vmax=1, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(columns)):
            axes.text(j, i, text[i][j], ha="center", va="center", fontsize=9)
    axes.set_xticks(range(len(columns)), columns, rotation=15)
    axes.set_yticks(range(len(rows)), [f"{r['source']} → {r['target']}" for r in rows])
    axes.set_title("Fine-tuned vs scratch\n(IQM over seeds; returns: chance = 0, "
                   "threshold = 1)")
    figure.colorbar(image, ax=axes, label="gain (time: -log2 ratio / 3)")
    figure.tight_layout()
    return figure


def markdown(rows: list[dict[str, Any]]) -> str:
    """Every pair's figures with their intervals, and each plan in words."""
    def cell(interval: dict[str, Any]) -> str:
        return f"{interval['iqm']:.1f} [{interval['ci'][0]:.1f}, {interval['ci'][1]:.1f}]"

    lines = ["# Transfer suite", "",
             "Fine-tuned / scratch, interquartile mean over seeds [bootstrap 95% CI]; "
             "normalised AUC: chance 0, reward threshold 1.", "",
             "| pair | jumpstart | asymptotic return | AUC | normalised AUC | steps to "
             "threshold | time ratio | verdict |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        ratio = f"{row['time_ratio']:.2f}" if row["time_ratio"] else "–"
        normalised_auc = " / ".join("–" if row[f"normalised_auc.{arm}"] is None
                                    else f"{row[f'normalised_auc.{arm}']:.2f}"
                                    for arm in ("finetuned", "scratch"))
        lines.append(
            f"| {row['source']} → {row['target']} | "
            + " | ".join(f"{cell(row[f'{key}.finetuned'])} / {cell(row[f'{key}.scratch'])}"
                         for key, _ in METRICS)
            + f" | {normalised_auc} | {cell(row['steps.finetuned'])} / "
              f"{cell(row['steps.scratch'])} | {ratio} | {row['verdict']} |")
    lines += ["", "Plans (what the probe chose, and why):", ""]
    lines += [f"- {row['pair']}: {row['plan']}" for row in rows]
    lines += ["", "What each pair's figures were computed from:", ""]
    lines += [f"- {row['pair']}: {versions_line(row['input_versions'])}" for row in rows]
    return "\n".join(lines) + "\n"

