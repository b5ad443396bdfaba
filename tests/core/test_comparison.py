import gymnasium as gym
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from hindsight_rl.core.actor_critic import GaussianActor
from hindsight_rl.core.comparison import (
    hindsight_returns_figure,
    html_report,
    incomparable,
    judge_policies,
    learning_curve_figure,
    markdown_report,
    record_episodes,
    score_policies,
    summarise_arm,
    task_title,
    verdict,
)
from hindsight_rl.core.config import EnvConfig, EvalConfig, NetworkConfig, ObservationConfig
from hindsight_rl.core.evaluation import evaluate_greedy
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.policy_file import NumpyPolicy, Policy, PolicyFileError, policy_to_bytes
from hindsight_rl.core.training import fresh_network
from tests.conftest import MINIGRID_VIEW, always_forward


def _arm(steps: float, final: float, auc: float) -> dict:
    def stat(value: float) -> dict:
        return {"iqm": value, "ci": [value - 1, value + 1]}

    return {"steps_to_threshold": stat(steps), "final_return": stat(final), "auc": stat(auc),
            "jumpstart": stat(final / 2), "solved_seeds": 3, "seeds": 3}


@pytest.mark.parametrize(("finetuned", "expected"), [
    (_arm(10_000, 500, 300), "Transfer helped (better env steps to threshold, final return, "
                             "area under the learning curve)"),
    (_arm(10_000, 300, 150), "Transfer gave mixed results (better env steps to threshold; "
                             "worse final return, area under the learning curve)"),
    (_arm(30_000, 400, 200), "Transfer hurt: negative transfer"),
    (_arm(20_000, 400.5, 200), "Transfer made no clear difference"),
])
def test_verdict_reads_every_metric(finetuned, expected):
    assert verdict(finetuned, _arm(20_000, 400, 200)).startswith(expected)


def test_unreached_threshold_counts_as_the_whole_budget():
    history = pd.DataFrame({"env_step": [0, 100, 200] * 2, "metric": "eval_return",
                            "value": [0.0, 5.0, 9.0, 0.0, 1.0, 2.0], "seed": [0] * 3 + [1] * 3})
    returns = {"seed_0": np.full(4, 9.0), "seed_1": np.full(4, 2.0)}
    summary = summarise_arm(returns, history, threshold=5.0, budget=1000,
                            config=EvalConfig(bootstrap_samples=20),
                            rng=np.random.default_rng(0))
    assert summary["per_seed"]["seed_0"]["steps_to_threshold"] == 100
    assert summary["per_seed"]["seed_1"]["steps_to_threshold"] is None
    assert summary["steps_to_threshold"]["mean"] == pytest.approx((100 + 1000) / 2)
    assert summary["solved_seeds"] == 1


def test_success_rates_are_summarised_per_seed_and_reported():
    history = pd.DataFrame({"env_step": [0, 100] * 2, "metric": "eval_return",
                            "value": [0.0, 1.0, 0.0, 0.5], "seed": [0, 0, 1, 1]})
    returns = {"seed_0": np.array([0.9, 0.8, 0.0, 0.7]), "seed_1": np.array([0.0, 0.6, 0.0, 0.0])}
    successes = {name: values > 0 for name, values in returns.items()}
    summary = summarise_arm(returns, history, threshold=0.8, budget=1000,
                            config=EvalConfig(bootstrap_samples=20),
                            rng=np.random.default_rng(0), successes=successes)
    assert summary["per_seed"]["seed_0"]["success_rate"] == 0.75
    assert summary["per_seed"]["seed_1"]["success_rate"] == 0.25
    assert summary["success_rate"]["mean"] == pytest.approx(0.5)
    metrics = {**_metrics(), "arms": {"finetuned": summary, "scratch": summary}}
    markdown = markdown_report(metrics)
    assert "success rate IQM [95% CI]" in markdown
    assert "seed_0: 0.6 ± 0.4, success in 75% of the episodes, threshold reached" in markdown


def test_stuck_episodes_are_counted_per_seed_and_reported_where_there_are_some():
    history = pd.DataFrame({"env_step": [0, 100] * 2, "metric": "eval_return",
                            "value": [0.0, 0.0, 0.0, 1.0], "seed": [0, 0, 1, 1]})
    returns = {"seed_0": np.zeros(4), "seed_1": np.array([0.9, 0.8, 0.9, 0.0])}

    def summary_and_report(stuck: dict[str, int]) -> tuple[dict, str]:
        summary = summarise_arm(returns, history, threshold=0.8, budget=1000,
                                config=EvalConfig(bootstrap_samples=20),
                                rng=np.random.default_rng(0), stuck=stuck)
        return summary, markdown_report({**_metrics(), "arms": {"finetuned": summary,
                                                                 "scratch": summary}})

    summary, markdown = summary_and_report({"seed_0": 4, "seed_1": 0})
    assert [seed["stuck_episodes"] for seed in summary["per_seed"].values()] == [4, 0]
    assert "seed_0: 0.0 ± 0.0, 4 episodes stuck in a short cycle, threshold not" in markdown
    assert "seed_1: 0.7 ± 0.4, threshold reached" in markdown
    _, markdown = summary_and_report({"seed_0": 1, "seed_1": 0})
    assert "seed_0: 0.0 ± 0.0, 1 episode stuck in a short cycle, threshold not" in markdown


@pytest.mark.parametrize(("success", "stuck", "unwatched"),
                         [("terminated", 3, 0), ("none", None, None)])
def test_judged_episodes_stuck_in_a_cycle_are_counted_only_where_success_is_defined(
        success, stuck, unwatched):
    """Always forward in MiniGrid-Empty-5x5 ends every episode against the east wall: stuck,
    where the task's success is the goal; where it defines none, a cycle may be the goal."""
    env = EnvConfig(id="MiniGrid-Empty-5x5-v0", success=success, observation=MINIGRID_VIEW)
    judged = judge_policies({"seed_0": always_forward(env)}, env, EvalConfig(episodes=3))
    assert judged["seed_0"].stuck == stuck
    assert judge_policies({"seed_0": always_forward(env)}, env,
                          EvalConfig(episodes=3, longest_cycle=0))["seed_0"].stuck == unwatched


def test_a_task_without_success_reports_no_success_rate():
    assert "success" not in markdown_report(_metrics())


def _metrics() -> dict:
    arm = {**_arm(10_000, 500, 300),
           "per_seed": {"seed_0": {"final_mean": 500.0, "final_std": 0.0,
                                   "steps_to_threshold": 7500.0},
                        "seed_1": {"final_mean": 20.0, "final_std": 3.0,
                                   "steps_to_threshold": None}}}
    return {"target": "CartPole-v1 <long>", "env_id": "CartPole-v1", "reward_threshold": 475.0,
            "budget_env_steps": 50_000, "eval_episodes": 100, "eval_seeds": [10, 109],
            "arms": {"finetuned": arm, "scratch": arm}, "verdict": "Transfer helped (...)"}


def test_reports_show_the_same_table_and_the_html_one_the_plots():
    figure = plt.figure()
    markdown = markdown_report(_metrics())
    page = html_report(_metrics(), {"learning curves": figure})
    plt.close(figure)
    assert ("| finetuned | 500.0 [499.0, 501.0] | 10000.0 [9999.0, 10001.0] | 300.0 [299.0, "
            "301.0] | 250.0 [249.0, 251.0] |") in markdown
    assert "<td>500.0 [499.0, 501.0]</td><td>10000.0 [9999.0, 10001.0]</td>" in page
    assert "Transfer helped (...)" in markdown and "Transfer helped (...)" in page
    assert page.count('src="data:image/png;base64,iVBORw0KGgo') == 1
    assert "CartPole-v1 &lt;long&gt;" in page
    for report in (markdown, page):
        assert "seed_0: 500.0 ± 0.0, threshold reached after 7500 env steps" in report
        assert "seed_1: 20.0 ± 3.0, threshold not reached within the budget" in report


def test_learning_curves_show_each_seed_and_the_iqm_with_its_labelled_band():
    steps = [0, 100, 200, 300]
    curves = {"finetuned": [[10, 50, 90, 100], [0, 40, 80, 100], [20, 60, 95, 100],
                            [10, 10, 10, 10]],
              "scratch": [[0, 0, 10, 20]] * 4}
    histories = {arm: pd.DataFrame([{"env_step": step, "metric": "eval_return",
                                     "value": float(value), "seed": seed}
                                    for seed, curve in enumerate(seeds)
                                    for step, value in zip(steps, curve, strict=True)])
                 for arm, seeds in curves.items()}
    summaries = {arm: summarise_arm({f"seed_{seed}": np.zeros(1) for seed in range(4)},
                                    history, 90.0, 300, EvalConfig(bootstrap_samples=50),
                                    np.random.default_rng(0))
                 for arm, history in histories.items()}
    figure = learning_curve_figure(histories, "t", threshold=90.0,
                                   rng=np.random.default_rng(0), summaries=summaries, budget=300)
    axes = figure.axes[0]
    labels = axes.get_legend_handles_labels()[1]
    plt.close(figure)
    assert "finetuned: IQM of 4 seeds" in labels
    assert "finetuned: 95% bootstrap interval of the IQM" in labels
    # IQM of the finetuned seeds at each step: the middle two of four.
    iqm_line = next(line for line in axes.lines if line.get_label() == "finetuned: IQM of 4 seeds")
    assert iqm_line.get_ydata().tolist() == pytest.approx([10, 45, 85, 100])
    assert "finetuned: IQM reaches the threshold at 300 steps" in labels
    assert not [label for label in labels if label.startswith("scratch: IQM reaches")]
    assert len(axes.lines) == 2 * (1 + 4) + 2  # per arm its IQM and 4 seeds; 2 markers


def test_steps_to_threshold_panel_shows_each_seed_and_marks_the_unsolved():
    histories = {arm: pd.DataFrame({"env_step": [0, 100, 200] * 2, "metric": "eval_return",
                                    "value": values, "seed": [0] * 3 + [1] * 3})
                 for arm, values in {"finetuned": [0.0, 95, 95, 0, 0, 95],
                                     "scratch": [0.0, 0, 0, 0, 0, 95]}.items()}
    summaries = {arm: summarise_arm({"seed_0": np.zeros(1), "seed_1": np.zeros(1)}, history,
                                    90.0, 200, EvalConfig(bootstrap_samples=50),
                                    np.random.default_rng(0))
                 for arm, history in histories.items()}
    figure = learning_curve_figure(histories, "t", 90.0, np.random.default_rng(0), summaries,
                                   budget=200)
    panel = figure.axes[1]
    plt.close(figure)
    assert [label.get_text() for label in panel.get_yticklabels()] == ["finetuned", "scratch"]
    reached = [tuple(map(tuple, points.get_offsets())) for points in panel.collections]
    # finetuned: seeds at 100 and 200 steps; scratch: one seed at 200, one never (x at budget)
    assert reached == [((100.0, 0.0), (200.0, 0.0)), ((200.0, 1.0),), ((200.0, 1.0),)]
    assert panel.get_title() == "Env steps to threshold"


def test_reports_name_the_versions_they_were_made_from():
    versions = {"hindsight_dataset": "2026-12-01T00.00.00.000Z",
                **{f"seed_{n}.finetuned_policy": "2026-12-02T00.00.00.000Z" for n in range(4)}}
    metrics = {**_metrics(), "input_versions": versions}
    figure = plt.figure()
    markdown, page = markdown_report(metrics), html_report(metrics, {"plot": figure})
    plt.close(figure)
    line = ("Input versions: 2026-12-01T00.00.00.000Z (hindsight_dataset); "
            "2026-12-02T00.00.00.000Z (seed_0.finetuned_policy, seed_1.finetuned_policy and "
            "2 more).")
    assert line in markdown and line in page


def test_hindsight_returns_split_by_outcome():
    table = pd.DataFrame({"episode_id": [0, 0, 1, 2], "episode_return": [-2.0, -2.0, -5.0, -1.0],
                          "success": [True, True, False, True]})
    figure = hindsight_returns_figure(table, "Corridor", threshold=-3.0)
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    plt.close(figure)
    assert labels == ["success (2)", "no success (1)", "reward threshold"]


def _history(arm_steps: int) -> pd.DataFrame:
    return pd.DataFrame({"env_step": [1000, arm_steps], "metric": ["eval_return"] * 2,
                         "value": [1.0, 2.0], "seed": [0, 0]})


def test_arms_that_cannot_be_compared_get_reasons_and_no_verdict():
    fair = incomparable({"finetuned": _history(5000), "scratch": _history(5000)}, budget=5000,
                        warm_start_steps=1000, collect_steps=1000, time_limit=200,
                        registered_time_limit=200)
    assert fair == []
    reasons = incomparable({"finetuned": _history(5000), "scratch": _history(4000)}, 5000,
                           warm_start_steps=2000, collect_steps=1000, time_limit=5,
                           registered_time_limit=200)
    assert len(reasons) == 3
    assert "scratch seed 0's learning curve ends at env step 4000" in reasons[0]
    assert "holds 2000 env steps but the scratch arm's warm start 1000" in reasons[1]
    assert "cut at 5 steps, not the environment's own 200" in reasons[2]
    line = verdict(_arm(1, 500, 400), _arm(10_000, 10, 10), reasons)
    assert line.startswith("Not comparable, no verdict: ") and "helped" not in line


def test_a_policy_for_another_env_is_refused_before_any_episode():
    cartpole = EnvConfig(id="CartPole-v1")
    network = fresh_network(cartpole, NetworkConfig(hidden_sizes=(8, 8)), 0,
                            np.zeros((0, 4), np.float32))
    policy = Policy(network=network, env=cartpole, gamma=0.99)
    with pytest.raises(PolicyFileError, match="seed_0: the network takes 4-entry observations "
                                              "and gives 2 Q-values, but MountainCar-v0"):
        score_policies({"seed_0": policy}, EnvConfig(id="MountainCar-v0"),
                       EvalConfig(episodes=1))


def test_an_actor_policy_is_scored_and_recorded_with_its_mean_action():
    torch.manual_seed(0)
    actor = GaussianActor(3, np.array([-2.0], np.float32), np.array([2.0], np.float32),
                          NetworkConfig(hidden_sizes=(8, 8)))
    pendulum = EnvConfig(id="Pendulum-v1")
    policies = {"seed_0": Policy(network=actor, env=pendulum, gamma=0.99)}
    config = EvalConfig(episodes=1, seed=31, gif_frames=3, gif_fps=10)
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=31)
    expected, done = 0.0, False
    while not done:
        with torch.no_grad():
            action = actor.deterministic(torch.from_numpy(obs)[None, None])[0, 0].numpy()
        obs, reward, terminated, truncated, _ = env.step(action)
        expected += float(reward)
        done = terminated or truncated
    scores = score_policies(policies, pendulum, config)
    assert scores["seed_0"].tolist() == pytest.approx([expected], rel=1e-4)
    gif, caption = record_episodes(policies, pendulum, config)["seed_0"]
    assert gif.startswith(b"GIF89a")
    assert caption == (f"return {scores['seed_0'][0]:.1f} from seed 31; the GIF shows its "
                       "first 2 steps")


def test_a_task_is_named_by_its_id_and_what_its_overrides_change():
    assert task_title(EnvConfig(id="CartPole-v1")) == "CartPole-v1"
    long_pole = EnvConfig(id="CartPole-v1", overrides={"length": 1.0, "masspole": 0.2})
    assert task_title(long_pole) == "CartPole-v1 (length 1.0, masspole 0.2)"


def test_a_gru_policy_is_scored_and_recorded_with_its_memory():
    positions = EnvConfig(id="CartPole-v1", observation=ObservationConfig(keep=[0, 2]))
    torch.manual_seed(5)
    network = QNetwork(2, 2, NetworkConfig(hidden_sizes=(16, 8), encoder="gru"),
                       scale=np.array([10.0, 20.0], np.float32))
    policies = {"seed_0": Policy(network=network, env=positions, gamma=0.99)}
    config = EvalConfig(episodes=3, seed=100, gif_frames=3, gif_fps=10)
    scores = score_policies(policies, positions, config)
    player = NumpyPolicy(policy_to_bytes(policies["seed_0"])).player()
    expected = evaluate_greedy(positions, player, [100, 101, 102])
    assert scores["seed_0"].tolist() == expected.tolist()
    _, caption = record_episodes(policies, positions, config)["seed_0"]
    assert caption.startswith(f"return {expected[0]:.1f} from seed 100")
