"""Fine-tuned vs scratch: per-seed scores, interquartile means with bootstrap intervals,
learning-curve plots and a plain-words verdict."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from typing import Any

# No backend is forced: matplotlib falls back to Agg where there is no display, and a
# notebook keeps its inline backend, so the project's import does not hide its plots.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from hindsight_rl.core.config import EnvConfig, EvalConfig
from hindsight_rl.core.envs import env_info, without_goal
from hindsight_rl.core.evaluation import (
    GreedyEvaluator,
    area_under_curve,
    bootstrap_ci,
    interquartile_mean,
    steps_to_threshold,
)
from hindsight_rl.core.policy_file import (
    NumpyPolicy,
    Policy,
    check_fits_env,
    policy_to_bytes,
)
from hindsight_rl.core.watch import episode_gif

ARMS = ("finetuned", "scratch")


def task_title(env_config: EnvConfig) -> str:
    """How reports name a task: its id, and its overrides when it has any
    (``CartPole-v1 (length 1.0, masspole 0.2)``)."""
    if not env_config.overrides:
        return env_config.id
    changed = ", ".join(f"{name} {value}" for name, value in env_config.overrides.items())
    return f"{env_config.id} ({changed})"


def eval_seeds(config: EvalConfig) -> list[int]:
    """Seeds of the final evaluation episodes."""
    return list(range(config.seed, config.seed + config.episodes))


@dataclass(frozen=True)
class Judged:
    """One policy's held-out episodes."""

    returns: np.ndarray
    successes: np.ndarray | None
    """Which episodes ended in the task's success (``env.success``); None where it
    defines none."""
    stuck: int | None = None
    """How many of the episodes that did not succeed ended stuck in a short cycle
    (``EvalConfig.longest_cycle``); None where the task defines no success, since there a
    cycle may be the goal (a pendulum balanced at rest repeats its observation)."""


def judge_policies(policies: dict[str, Policy], env_config: EnvConfig,
                   config: EvalConfig) -> dict[str, Judged]:
    """Episodes of each policy as its file plays (the argmax, or Boltzmann draws seeded
    with the first episode's seed where the file has a temperature), from its bytes with
    numpy alone (which appends the file's own goal to the environment's observations); a
    policy that does not fit the environment is refused before any episode."""
    env = without_goal(env_config)
    info = env_info(env)
    files = {name: NumpyPolicy(policy_to_bytes(policy), name)
             for name, policy in policies.items()}
    for name, file in files.items():
        check_fits_env(file.document, env.id, info, name)
    counts_stuck = env.success != "none"  # without a success to miss, a cycle may be the goal
    evaluator = GreedyEvaluator(env, eval_seeds(config),
                                config.longest_cycle if counts_stuck else 0)
    judged = {}
    try:
        for name, file in files.items():
            returns = evaluator.run(file.player(config.seed))
            stuck = sum(cycle is not None for cycle in evaluator.cycles) if counts_stuck \
                else None
            judged[name] = Judged(returns, evaluator.successes, stuck)
        return judged
    finally:
        evaluator.close()


def score_policies(policies: dict[str, Policy], env_config: EnvConfig,
                   config: EvalConfig) -> dict[str, np.ndarray]:
    """Greedy returns of each policy on the held-out episodes (:func:`judge_policies`)."""
    return {name: judged.returns
            for name, judged in judge_policies(policies, env_config, config).items()}


def record_episodes(policies: dict[str, Policy], env_config: EnvConfig,
                    config: EvalConfig) -> dict[str, tuple[bytes, str]]:
    """Each policy's first evaluation episode as a short GIF with its caption, played from
    the file bytes as :func:`score_policies` plays them."""
    env = without_goal(env_config)
    return {name: episode_gif(env, NumpyPolicy(policy_to_bytes(policy), name).player(
        config.seed), config.seed, config.gif_frames, config.gif_fps)
            for name, policy in policies.items()}


def normalised(value: float, chance: float | None, threshold: float | None) -> float | None:
    """``value`` on the scale where chance (a uniform-random policy's return) is 0 and the
    reward threshold ("solved") is 1, capped at 1; None without both."""
    if chance is None or threshold is None or threshold <= chance:
        return None
    return min(1.0, (value - chance) / (threshold - chance))


def summarise_arm(returns: dict[str, np.ndarray], history: pd.DataFrame,
                  threshold: float | None, budget: int, config: EvalConfig,
                  rng: np.random.Generator, chance: float | None = None,
                  successes: dict[str, np.ndarray] | None = None,
                  stuck: dict[str, int] | None = None) -> dict[str, Any]:
    """Per-seed figures and their interquartile means with bootstrap intervals: final
    return, env steps to the threshold, area under the learning curve (and normalised by
    :func:`normalised`, given ``chance``), the jumpstart (the curve's first point) and,
    given each seed's ``successes`` on its judged episodes, the success rate; given
    ``stuck``, each seed's count of judged episodes that ended stuck in a short cycle.

    A seed that never reaches the threshold counts as ``budget`` steps (censored), so the
    steps-to-threshold statistic can only flatter an arm that did reach it.
    """
    per_seed: dict[str, dict[str, Any]] = {}
    for name, values in returns.items():
        curve = _curve(history, int(name.removeprefix("seed_")))
        reached = steps_to_threshold(curve.index.to_numpy(), curve.to_numpy(), threshold)
        auc = area_under_curve(curve.index.to_numpy(), curve.to_numpy())
        per_seed[name] = {"final_mean": float(values.mean()), "final_std": float(values.std()),
                          "steps_to_threshold": reached, "auc": auc,
                          "normalised_auc": normalised(auc, chance, threshold),
                          "jumpstart": float(curve.iloc[0]),
                          "solved": threshold is not None and float(values.mean()) >= threshold}
        if successes is not None:
            per_seed[name]["success_rate"] = float(np.mean(successes[name]))
        if stuck is not None:
            per_seed[name]["stuck_episodes"] = stuck[name]
    summary = {"per_seed": per_seed,
               "solved_seeds": sum(s["solved"] for s in per_seed.values()),
               "seeds": len(per_seed)}
    figures = [("final_return", [s["final_mean"] for s in per_seed.values()]),
               ("steps_to_threshold", [budget if s["steps_to_threshold"] is None
                                       else s["steps_to_threshold"] for s in per_seed.values()]),
               ("auc", [s["auc"] for s in per_seed.values()]),
               ("jumpstart", [s["jumpstart"] for s in per_seed.values()])]
    if successes is not None:
        figures.append(("success_rate", [s["success_rate"] for s in per_seed.values()]))
    if all(s["normalised_auc"] is not None for s in per_seed.values()):
        figures.append(("normalised_auc", [s["normalised_auc"] for s in per_seed.values()]))
    for key, values in figures:
        values = np.asarray(values, dtype=np.float64)
        low, high = bootstrap_ci(values, config.bootstrap_samples, config.confidence, rng)
        summary[key] = {"iqm": interquartile_mean(values), "ci": [low, high],
                        "mean": float(values.mean()), "std": float(values.std())}
    return summary


def _curve(history: pd.DataFrame, seed: int) -> pd.Series:
    rows = history[(history["seed"] == seed) & (history["metric"] == "eval_return")]
    return rows.groupby("env_step")["value"].mean().sort_index()


# Metric, its label, and whether a higher value is better.
_VERDICT_METRICS = (("steps_to_threshold", "env steps to threshold", False),
                    ("final_return", "final return", True),
                    ("auc", "area under the learning curve", True))


def compare_metric(finetuned: dict[str, Any], scratch: dict[str, Any], key: str,
                   higher_is_better: bool) -> str:
    """``better``, ``worse`` or ``unclear`` for the fine-tuned arm: clear only when the
    two bootstrap intervals of the interquartile mean do not overlap."""
    f_low, f_high = finetuned[key]["ci"]
    s_low, s_high = scratch[key]["ci"]
    if f_low > s_high:
        return "better" if higher_is_better else "worse"
    if f_high < s_low:
        return "worse" if higher_is_better else "better"
    return "unclear"


MetricSpec = tuple[str, str, bool]
"""(summary key, label, whether a higher value is better)."""


def clear_differences(arm: dict[str, Any], base: dict[str, Any],
                      metrics: tuple[MetricSpec, ...] = _VERDICT_METRICS
                      ) -> tuple[list[str], list[str]]:
    """Labels of the metrics on which ``arm`` is clearly better, and clearly worse, than
    ``base`` (bootstrap intervals of the interquartile means apart)."""
    outcomes = {label: compare_metric(arm, base, key, higher) for key, label, higher in metrics}
    return ([label for label, outcome in outcomes.items() if outcome == "better"],
            [label for label, outcome in outcomes.items() if outcome == "worse"])


def incomparable(histories: dict[str, pd.DataFrame], budget: int, warm_start_steps: int,
                 collect_steps: int, time_limit: int | None,
                 registered_time_limit: int | None) -> list[str]:
    """Why the arms cannot be compared, if they cannot: a learning curve that does not span
    the budget, a hindsight dataset of another size than the scratch arm's warm start, or
    a time limit other than the environment's own (its reward threshold assumes that one)."""
    reasons = []
    for arm, history in histories.items():
        curve = history[history["metric"] == "eval_return"]
        for seed, rows in curve.groupby("seed"):
            if int(rows["env_step"].max()) != budget:
                reasons.append(f"{arm} seed {seed}'s learning curve ends at env step "
                               f"{int(rows['env_step'].max())}, not the budget {budget}")
    if warm_start_steps != collect_steps:
        reasons.append(f"the hindsight dataset holds {warm_start_steps} env steps but the "
                       f"scratch arm's warm start {collect_steps} (collected under other "
                       "settings?)")
    if time_limit != registered_time_limit:
        reasons.append(f"episodes are cut at {time_limit} steps, not the environment's own "
                       f"{registered_time_limit}: its reward threshold does not apply")
    return reasons


def verdict(finetuned: dict[str, Any], scratch: dict[str, Any],
            incomparable_because: list[str] | None = None) -> str:
    """One line: did transfer help? ``helped`` when some metric is clearly better and none
    clearly worse, ``hurt`` in the mirror case, ``mixed`` when both, otherwise no clear
    difference; the figures follow so the reader can judge. Arms that cannot be compared
    get no verdict, only the reasons."""
    if incomparable_because:
        return "Not comparable, no verdict: " + "; ".join(incomparable_because) + "."
    better, worse = clear_differences(finetuned, scratch)
    if better and worse:
        word = f"gave mixed results (better {', '.join(better)}; worse {', '.join(worse)})"
    elif better:
        word = f"helped (better {', '.join(better)})"
    elif worse:
        word = f"hurt: negative transfer (worse {', '.join(worse)})"
    else:
        word = "made no clear difference (95% intervals overlap on every metric)"
    figures = "; ".join(
        f"{label} IQM {finetuned[key]['iqm']:.1f} fine-tuned vs {scratch[key]['iqm']:.1f} scratch"
        for key, label, _ in _VERDICT_METRICS)
    return (f"Transfer {word}: {figures}; solved seeds {finetuned['solved_seeds']}/"
            f"{finetuned['seeds']} vs {scratch['solved_seeds']}/{scratch['seeds']}.")


def learning_curve_figure(histories: dict[str, pd.DataFrame], title: str,
                          threshold: float | None, rng: np.random.Generator,
                          summaries: dict[str, dict[str, Any]], budget: int) -> plt.Figure:
    """Left, greedy return against env step per arm: each seed's curve (thin), their
    interquartile mean (the statistic of the report's tables) with its 95% bootstrap band,
    and where that IQM curve first reaches the reward threshold. Right, env steps to the
    threshold per arm (:func:`summarise_arm`'s ``summaries``): each seed, and the IQM with
    its interval, as in rliable's interval estimates."""
    figure, (axes, steps_axes) = plt.subplots(
        1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [2.2, 1]})
    colours = {}
    for arm, history in histories.items():
        curves = history[history["metric"] == "eval_return"].pivot_table(
            index="env_step", columns="seed", values="value").sort_index().ffill()
        steps, values = curves.index.to_numpy(), curves.to_numpy()
        picks = rng.integers(0, values.shape[1], size=(1000, values.shape[1]))
        resampled_iqms = interquartile_mean(values[:, picks], axis=2)
        iqm = interquartile_mean(values, axis=1)
        (line,) = axes.plot(steps, iqm, label=f"{arm}: IQM of {values.shape[1]} seeds")
        colours[arm] = colour = line.get_color()
        axes.plot(steps, values, color=colour, alpha=0.3, linewidth=0.7)
        axes.fill_between(steps, np.quantile(resampled_iqms, 0.025, axis=1),
                          np.quantile(resampled_iqms, 0.975, axis=1), color=colour, alpha=0.2,
                          label=f"{arm}: 95% bootstrap interval of the IQM")
        reached = steps_to_threshold(steps, iqm, threshold)
        if reached is not None:
            axes.axvline(reached, color=colour, linestyle=":",
                         label=f"{arm}: IQM reaches the threshold at {reached:.0f} steps")
    if threshold is not None:
        axes.axhline(threshold, color="grey", linestyle="--", label="reward threshold")
    axes.set(xlabel="target env steps", ylabel="greedy return", title=title)
    axes.legend(loc="best", fontsize="small")
    _steps_to_threshold_panel(steps_axes, summaries, colours, threshold, budget)
    figure.tight_layout()
    return figure


def _steps_to_threshold_panel(axes: plt.Axes, summaries: dict[str, dict[str, Any]],
                              colours: dict[str, str], threshold: float | None,
                              budget: int) -> None:
    """One row per arm: every seed's env steps to the threshold (x: never reached, counted
    as the budget), and the IQM with its bootstrap interval."""
    arms = [arm for arm in summaries if arm in colours]
    for row, arm in enumerate(arms):
        summary, colour = summaries[arm], colours[arm]
        per_seed = [seed["steps_to_threshold"] for seed in summary["per_seed"].values()]
        reached = [steps for steps in per_seed if steps is not None]
        axes.scatter(reached, [row] * len(reached), color=colour, alpha=0.6, s=18)
        censored = len(per_seed) - len(reached)
        if censored:
            axes.scatter([budget] * censored, [row] * censored, color=colour, marker="x", s=30)
        low, high = summary["steps_to_threshold"]["ci"]
        axes.plot([low, high], [row, row], color=colour, linewidth=6, alpha=0.35,
                  solid_capstyle="butt")
        axes.plot([summary["steps_to_threshold"]["iqm"]], [row], marker="|", color="black",
                  markersize=16)
    axes.axvline(budget, color="grey", linestyle="--", linewidth=0.8)
    axes.set_yticks(range(len(arms)), arms)
    axes.set_ylim(len(arms) - 0.4, -0.6)  # the first arm on top, as in the legend
    axes.set_xlim(0, budget * 1.05)
    axes.set(xlabel="target env steps (dashed: budget)",
             title="Env steps to threshold" if threshold is not None
             else "No reward threshold: budget")
    axes.annotate("dots: seeds; x: not reached; bar: 95% CI; |: IQM", (0.5, -0.3),
                  xycoords="axes fraction", ha="center", fontsize="small")


def hindsight_returns_figure(table: pd.DataFrame, title: str,
                             threshold: float | None) -> plt.Figure:
    """Histogram of the hindsight dataset's episode returns (one per episode), split by
    outcome when the task defines success: what the fine-tuning buffer starts from."""
    episodes = table.groupby("episode_id").first()
    figure, axes = plt.subplots(figsize=(7, 4))
    if "success" in episodes:
        groups = {"success": episodes[episodes["success"]],
                  "no success": episodes[~episodes["success"]]}
    else:
        groups = {"episodes": episodes}
    values = episodes["episode_return"].to_numpy(np.float64)
    low, high = values.min(), values.max()
    if threshold is not None:
        low, high = min(low, threshold), max(high, threshold)
    bins = np.linspace(low - 0.5, high + 0.5, 21)  # wide enough when every return is equal
    for name, rows in groups.items():
        axes.hist(rows["episode_return"], bins=bins, alpha=0.7, label=f"{name} ({len(rows)})")
    if threshold is not None:
        axes.axvline(threshold, color="grey", linestyle="--", label="reward threshold")
    axes.set(xlabel="episode return (cut episodes: partial)", ylabel="episodes",
             title=f"Hindsight dataset: {title}")
    axes.legend()
    figure.tight_layout()
    return figure


def _comparison_table(metrics: dict[str, Any]) -> list[list[str]]:
    """Header and one row per arm: the figures both reports show."""
    rates = all("success_rate" in metrics["arms"][arm] for arm in ARMS)
    rows = [["arm", "final return IQM [95% CI]", "env steps to threshold IQM [95% CI]",
             "AUC IQM [95% CI]", "jumpstart IQM [95% CI]",
             *(["success rate IQM [95% CI]"] if rates else []), "solved seeds"]]
    keys = ("final_return", "steps_to_threshold", "auc", "jumpstart",
            *(("success_rate",) if rates else ()))
    for arm in ARMS:
        summary = metrics["arms"][arm]
        cells = [_iqm_cell(summary[k], 2 if k == "success_rate" else 1) for k in keys]
        rows.append([arm, *cells, f"{summary['solved_seeds']}/{summary['seeds']}"])
    return rows


def _iqm_cell(figure: dict[str, Any], digits: int) -> str:
    """``IQM [low, high]`` of one summary figure."""
    low, high = figure["ci"]
    return f"{figure['iqm']:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _budget_line(metrics: dict[str, Any]) -> str:
    line = (f"Budget: {metrics['budget_env_steps']} target env steps per arm; "
            f"{metrics['eval_episodes']} greedy evaluation episodes per policy on seeds "
            f"{metrics['eval_seeds'][0]}…{metrics['eval_seeds'][1]}; "
            f"reward threshold {metrics['reward_threshold']}.")
    plan = metrics.get("transfer_plan")
    return f"{plan['reason']} {line}" if plan else line


def versions_line(versions: dict[str, str]) -> str:
    """Which catalog versions a report was made from, inputs grouped by version (a run
    usually reads what it wrote itself, so one or two versions)."""
    by_version: dict[str, list[str]] = {}
    for name, version in versions.items():
        by_version.setdefault(version, []).append(name)
    if not by_version:
        return "Inputs: not read from versioned datasets."
    groups = [f"{version} ({_some(names)})" for version, names in sorted(by_version.items())]
    return "Input versions: " + "; ".join(groups) + "."


def _some(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 3 else \
        f"{', '.join(names[:2])} and {len(names) - 2} more"


def _per_seed_lines(metrics: dict[str, Any]) -> list[str]:
    return [f"{arm} {name}: {seed['final_mean']:.1f} ± {seed['final_std']:.1f}, "
            + _succeeded(seed.get("success_rate")) + _stuck(seed.get("stuck_episodes"))
            + _reached(seed["steps_to_threshold"])
            for arm in ARMS for name, seed in metrics["arms"][arm]["per_seed"].items()]


def _stuck(episodes: int | None) -> str:
    if not episodes:
        return ""
    return f"{episodes} episode{'s' * (episodes != 1)} stuck in a short cycle, "


def _succeeded(rate: float | None) -> str:
    return "" if rate is None else f"success in {rate:.0%} of the episodes, "


def _reached(steps: float | None) -> str:
    if steps is None:
        return "threshold not reached within the budget"
    return f"threshold reached after {steps:.0f} env steps"


_CENSORED = ("Seeds that never reached the threshold count as the full budget in the "
             "steps-to-threshold statistic.")


def markdown_report(metrics: dict[str, Any]) -> str:
    """A short human summary of one target's comparison."""
    header, *rows = _comparison_table(metrics)
    lines = [f"# Transfer report: {metrics['target']}", "",
             f"**{metrics['verdict']}**", "", _budget_line(metrics), "",
             versions_line(metrics.get("input_versions", {})), "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", "Per seed (final mean ± std over the evaluation episodes):", ""]
    lines += [f"- {line}" for line in _per_seed_lines(metrics)]
    lines += ["", _CENSORED, ""]
    return "\n".join(lines)


def html_report(metrics: dict[str, Any], figures: dict[str, plt.Figure],
                episodes: dict[str, tuple[bytes, str]] | None = None) -> str:
    """The markdown report's content as one self-contained HTML page with the plots and the
    recorded episodes (:func:`record_episodes`) inline, so it opens anywhere (browser,
    kedro-viz preview, a scheduler's artefact store)."""
    header, *rows = _comparison_table(metrics)
    table = ("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in header) + "</tr>"
             + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                       for row in rows) + "</table>")
    images = "".join(f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,'
                     f'{_png_base64(figure)}"><figcaption>{html.escape(name)}</figcaption>'
                     "</figure>" for name, figure in figures.items())
    clips = "".join(f'<figure class="episode"><img alt="{html.escape(name)}" '
                    f'src="data:image/gif;base64,{base64.b64encode(gif).decode("ascii")}">'
                    f"<figcaption>{html.escape(f'{name}: {caption}')}</figcaption></figure>"
                    for name, (gif, caption) in (episodes or {}).items())
    if clips:
        clips = f"<h2>One episode of each final policy</h2><div>{clips}</div>"
    seeds = "".join(f"<li>{html.escape(line)}</li>" for line in _per_seed_lines(metrics))
    title = html.escape(f"Transfer report: {metrics['target']}")
    versions = versions_line(metrics.get("input_versions", {}))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
            "td,th{border:1px solid #ccc;padding:.3em .6em}table{border-collapse:collapse}"
            "img{max-width:100%}figure.episode{display:inline-block;width:300px;"
            "margin:.5em;vertical-align:top}</style></head><body>"
            f"<h1>{title}</h1><p><strong>{html.escape(metrics['verdict'])}</strong></p>"
            f"<p>{html.escape(_budget_line(metrics))}</p>"
            f"<p>{html.escape(versions)}</p>{table}{images}{clips}"
            f"<h2>Per seed</h2><ul>{seeds}</ul><p>{html.escape(_CENSORED)}</p></body></html>\n")


def _png_base64(figure: plt.Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
