"""Ours vs Stable-Baselines3 DQN: wall time and env steps to a solving policy, in one run.

    pip install torch==2.13.0 -e ".[bench]"
    python benchmarks/vs_sb3.py                        # CartPole-v1 × 5 seeds, MountainCar-v0 × 3
    python benchmarks/vs_sb3.py --tasks CartPole-v1    # our defaults vs RL Zoo's
    python benchmarks/vs_sb3.py --tasks CartPole-v1 --sb3-hidden 128 128 --sb3-n-step 3
    python benchmarks/vs_sb3.py --tasks MountainCar-v0 --sb3-hidden 128 128 --sb3-n-step 5
                                                       # SB3 given our network and targets

By default each side runs as shipped: ours with the project's defaults (RL Zoo's tuned DQN
settings for the task, a 128-128 network, n-step targets: 3 steps on CartPole-v1, 5 on
MountainCar-v0), SB3 with RL Zoo's (the same settings, a 256-256 network, one-step targets);
``--sb3-hidden`` and ``--sb3-n-step`` give SB3 ours, ``--hidden`` and ``--n-step`` change
ours. Both use one torch thread and the same evaluation protocol: every 2,500 env steps, 20
greedy episodes on fixed seeds (our ``GreedyEvaluator`` plays SB3's Q-network too); training
stops at the first point at or above the task's reward threshold, or at RL Zoo's budget. The
policy at that point is then judged on 100 greedy episodes of seeds no run trains or evaluates
on. Ours runs the source stage's own code path: 1,000 uniform steps collected, then
``train_from_scratch``. On CartPole-v1, the project's source task, each seed also times the
whole ``kedro run --pipeline source`` command (Kedro's start, collection, pretraining and the
100-episode export included) with that seed, against SB3's whole process.

Every run is a fresh child process, so peak RSS is its own; the training time leaves out
imports and judging, the whole process's time (measured from outside) does not. The frameworks
alternate seed by seed so that drift in machine load hits both. Alongside, the same run
measures two references: the raw PyTorch update (the same double-DQN update written as a plain
loop over pre-made batches) and raw env stepping (one env, uniform actions), so our loop is
also compared with what it is built from. Results: a table on stdout and in ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

EVAL_INTERVAL = 2_500
EVAL_EPISODES = 20
EVAL_SEED = 1_000_000
JUDGE_EPISODES = 100
JUDGE_SEED = 2_000_000
WARM_STEPS = 1_000

# RL Zoo's tuned DQN hyperparameters (hyperparams/dqn.yml), budget included.
ZOO: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(total_steps=50_000, learning_rate=2.3e-3, batch_size=64,
                        buffer_size=100_000, learning_starts=1_000, gamma=0.99,
                        target_update_interval=10, train_freq=256, gradient_steps=128,
                        exploration_fraction=0.16, exploration_final_eps=0.04),
    "MountainCar-v0": dict(total_steps=120_000, learning_rate=4e-3, batch_size=128,
                           buffer_size=10_000, learning_starts=1_000, gamma=0.98,
                           target_update_interval=600, train_freq=16, gradient_steps=8,
                           exploration_fraction=0.2, exploration_final_eps=0.07),
}
DEFAULT_SEEDS = {"CartPole-v1": 5, "MountainCar-v0": 3}
SOURCE_TASK = "CartPole-v1"  # conf/base/parameters_source.yml
PROJECT = Path(__file__).resolve().parents[1]
N_STEP = {"CartPole-v1": 3, "MountainCar-v0": 5}  # ours (conf/base); RL Zoo's are 1


class CallTimer:
    """Wall time and count of gradient updates, accumulated around each call it wraps
    (training bursts; evaluations, which count no updates)."""

    def __init__(self) -> None:
        self.seconds, self.updates = 0.0, 0

    def wrap(self, burst: Any, updates_per_call: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            result = burst(*args, **kwargs)
            self.seconds += time.perf_counter() - start
            self.updates += updates_per_call(*args, **kwargs)
            return result
        return timed


def threshold_of(env_id: str) -> float:
    from hindsight_rl.core.config import EnvConfig
    from hindsight_rl.core.envs import env_info
    return float(env_info(EnvConfig(id=env_id)).reward_threshold)


def eval_seeds() -> list[int]:
    return list(range(EVAL_SEED, EVAL_SEED + EVAL_EPISODES))


def judge(env_id: str, q_values: Any) -> float:
    from hindsight_rl.core.config import EnvConfig
    from hindsight_rl.core.evaluation import evaluate_greedy, greedy
    seeds = range(JUDGE_SEED, JUDGE_SEED + JUDGE_EPISODES)
    return float(evaluate_greedy(EnvConfig(id=env_id), greedy(q_values), seeds).mean())


def run_ours(env_id: str, seed: int, hidden: tuple[int, ...], n_step: int) -> dict[str, Any]:
    """The source stage's code path with RL Zoo's settings and stop-on-threshold."""
    from hindsight_rl.core import dqn
    from hindsight_rl.core.config import CollectConfig, DQNConfig, EnvConfig, NetworkConfig
    from hindsight_rl.core.envs import env_info
    from hindsight_rl.core.rollouts import behaviour_policy, collect_rollouts, q_function
    from hindsight_rl.core.training import train_from_scratch

    timer = CallTimer()
    dqn._train_burst = timer.wrap(dqn._train_burst, lambda run, config: config.gradient_steps)
    evals = CallTimer()
    dqn.GreedyEvaluator.run = evals.wrap(dqn.GreedyEvaluator.run, lambda *a: 0)
    env = EnvConfig(id=env_id)
    config = DQNConfig(**ZOO[env_id], eval_interval=EVAL_INTERVAL, eval_episodes=EVAL_EPISODES,
                       keep="last", stop_on_threshold=True, n_step=n_step)
    start = time.perf_counter()
    collect = CollectConfig(steps=WARM_STEPS, policy="uniform", seed=seed)
    act = behaviour_policy(collect, env_info(env).n_actions, None, np.random.default_rng(seed))
    warm = collect_rollouts(env, WARM_STEPS, act, seed)
    [(policy, history)] = train_from_scratch(env, NetworkConfig(hidden_sizes=hidden), config,
                                             {seed: warm}, eval_seeds(), label=f"ours {env_id}")
    seconds = time.perf_counter() - start
    curve = history[history["metric"] == "eval_return"]
    return _record(env_id, seconds, curve["env_step"].to_numpy(), curve["value"].to_numpy(),
                   timer, evals.seconds, judge(env_id, q_function(policy.network)))


def run_sb3(env_id: str, seed: int, hidden: tuple[int, ...], n_step: int) -> dict[str, Any]:
    """SB3 DQN with the same settings; a callback runs our evaluator and stops at threshold."""
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    from hindsight_rl.core.config import EnvConfig
    from hindsight_rl.core.evaluation import GreedyEvaluator, greedy

    settings = dict(ZOO[env_id])
    budget = settings.pop("total_steps")
    model = DQN("MlpPolicy", env_id, seed=seed, device="cpu", verbose=0,
                policy_kwargs={"net_arch": list(hidden)}, n_steps=n_step, **settings)

    def q_values(obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model.q_net(torch.as_tensor(obs, dtype=torch.float32)).numpy()

    evaluator = GreedyEvaluator(EnvConfig(id=env_id), eval_seeds())
    threshold = threshold_of(env_id)
    steps, returns = [], []
    evals = CallTimer()
    evaluate = evals.wrap(lambda: evaluator.run(greedy(q_values)).mean(), lambda: 0)

    class StopOnThreshold(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % EVAL_INTERVAL and self.num_timesteps != budget:
                return True
            steps.append(self.num_timesteps)
            returns.append(float(evaluate()))
            return returns[-1] < threshold

    timer = CallTimer()
    model.train = timer.wrap(model.train, lambda gradient_steps, batch_size=0: gradient_steps)
    start = time.perf_counter()
    model.learn(budget, callback=StopOnThreshold())
    seconds = time.perf_counter() - start
    return _record(env_id, seconds, np.array(steps), np.array(returns), timer, evals.seconds,
                   judge(env_id, q_values))


def _record(env_id: str, seconds: float, curve_steps: np.ndarray, curve_returns: np.ndarray,
            updates: CallTimer, eval_seconds: float, judged: float) -> dict[str, Any]:
    """One run's row: time and steps to threshold (None if never), throughputs, peak RSS."""
    reached = np.flatnonzero(curve_returns >= threshold_of(env_id))
    env_steps = int(curve_steps[-1])
    acting = seconds - updates.seconds - eval_seconds
    return {"seconds": seconds, "env_steps": env_steps,
            "solved": bool(len(reached)), "judged_return": judged,
            "env_steps_per_s": env_steps / acting, "updates_per_s":
            updates.updates / updates.seconds if updates.seconds else float("nan"),
            "updates": updates.updates, "eval_seconds": eval_seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def raw_update_rate(env_id: str, hidden: tuple[int, ...], updates: int = 2_000) -> float:
    """Updates/s of the same double-DQN update as a plain PyTorch loop: no replay buffer,
    no bookkeeping, the default (per-tensor) Adam, batches made up front."""
    from torch import nn
    settings = ZOO[env_id]
    import gymnasium as gym
    env = gym.make(env_id)
    obs_dim, n_actions = env.observation_space.shape[0], env.action_space.n
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(obs_dim, hidden[0]), nn.ReLU(),
                           nn.Linear(hidden[0], hidden[1]), nn.ReLU(),
                           nn.Linear(hidden[1], n_actions))
    target = copy.deepcopy(online).requires_grad_(False)
    optimizer = torch.optim.Adam(online.parameters(), lr=settings["learning_rate"])
    batch = settings["batch_size"]
    batches = [(torch.randn(batch, obs_dim), torch.randint(n_actions, (batch, 1)),
                torch.randn(batch), torch.randn(batch, obs_dim), torch.zeros(batch))
               for _ in range(64)]

    def update(obs, action, reward, next_obs, done) -> None:
        with torch.no_grad():
            best = online(next_obs).argmax(1, keepdim=True)
            y = reward + settings["gamma"] * (1 - done) * target(next_obs).gather(1, best)[:, 0]
        loss = nn.functional.smooth_l1_loss(online(obs).gather(1, action)[:, 0], y)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(online.parameters(), 10.0)
        optimizer.step()

    for i in range(100):
        update(*batches[i % 64])
    start = time.perf_counter()
    for i in range(updates):
        update(*batches[i % 64])
    return updates / (time.perf_counter() - start)


def raw_env_rate(env_id: str, steps: int = 50_000) -> float:
    """Env steps/s of one Gymnasium env under uniform actions, resets included."""
    import gymnasium as gym
    env = gym.make(env_id)
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(env.action_space.n, size=steps)
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(int(action))
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def kedro_source_seconds(seed: int) -> float:
    """Wall time of the whole ``kedro run --pipeline source`` command with ``seed`` as the
    source's training and collection seed, run in a scratch copy of the project's config so
    that the project's own ``data/`` (its latest pretrained policy) is left as it was."""
    with tempfile.TemporaryDirectory() as scratch:
        for name in ("pyproject.toml", ".telemetry"):
            shutil.copy(PROJECT / name, scratch)
        shutil.copytree(PROJECT / "conf", Path(scratch) / "conf",
                        ignore=shutil.ignore_patterns("local"))
        for folder in ("conf/local", "src"):  # Kedro wants both; the package is installed
            (Path(scratch) / folder).mkdir()
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "kedro", "run", "--pipeline", "source",
                        "--params",
                        f"sources.cartpole.seed={seed},sources.cartpole.collect.seed={seed}"],
                       cwd=scratch, check=True, capture_output=True,
                       env={**os.environ, "DO_NOT_TRACK": "1"})
        return time.perf_counter() - start


RUNNERS = {"ours": run_ours, "sb3": run_sb3}


def child(framework: str, env_id: str, seed: int, hidden: tuple[int, ...], n_step: int
          ) -> None:
    torch.set_num_threads(1)
    print(json.dumps(RUNNERS[framework](env_id, seed, hidden, n_step)))


def run_child(framework: str, env_id: str, seed: int, hidden: tuple[int, ...], n_step: int
              ) -> dict[str, Any]:
    """One run in a fresh process; ``process_seconds`` is that whole process's wall time
    (Python's start, imports, training, judging), as a user's script would take."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--child", framework, env_id, str(seed),
                          "--hidden", *map(str, hidden), "--n-step", str(n_step)],
                         capture_output=True, text=True, check=True)
    return {**json.loads(out.stdout.strip().splitlines()[-1]),
            "process_seconds": time.perf_counter() - start}


def median(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def table(env_id: str, results: dict[str, list[dict[str, Any]]], hidden: dict[str, tuple],
          n_step: dict[str, int], raw_updates: float, raw_env: float) -> str:
    """Markdown: medians over seeds per framework, then ours ÷ SB3 and ours ÷ raw."""
    keys = [("seconds", "wall s to threshold (training)", "{:.1f}"),
            ("process_seconds", "whole process s (start, imports, training, judging)",
             "{:.1f}"),
            ("env_steps", "env steps to threshold", "{:.0f}"),
            ("env_steps_per_s", "env steps/s (acting)", "{:.0f}"),
            ("updates_per_s", "updates/s", "{:.0f}"),
            ("peak_rss_mb", "peak RSS MB", "{:.0f}")]
    ours, sb3 = results["ours"], results["sb3"]
    widths = {name: "-".join(map(str, sizes)) for name, sizes in hidden.items()}
    names = {name: f"{name.replace('sb3', 'SB3')} {widths[name]}, n = {n_step[name]}"
             for name in hidden}
    lines = [f"### {env_id} ({len(ours)} seeds, medians)", "",
             f"| | {names['ours']} | {names['sb3']} | ours ÷ SB3 |",
             "|---|---|---|---|"]
    for key, name, fmt in keys:
        a, b = median(ours, key), median(sb3, key)
        lines.append(f"| {name} | {fmt.format(a)} | {fmt.format(b)} | {a / b:.2f} |")
        if key == "process_seconds" and "kedro_seconds" in ours[0]:
            a = median(ours, "kedro_seconds")
            lines.append(f"| `kedro run --pipeline source` (ours) vs SB3's whole process, s | "
                         f"{a:.1f} | {b:.1f} | {a / b:.2f} |")
    threshold = threshold_of(env_id)
    solved = [sum(row["solved"] for row in rows) for rows in (ours, sb3)]
    judged_solved = [sum(row["judged_return"] >= threshold for row in rows)
                     for rows in (ours, sb3)]
    for name, (a, b) in (("solved (eval ≥ threshold)", solved),
                         ("judged ≥ threshold (100 held-out episodes)", judged_solved)):
        lines.append(f"| {name} | {a}/{len(ours)} | {b}/{len(sb3)} | |")
    judged = [f"{r['judged_return']:.1f}" for r in ours], [f"{r['judged_return']:.1f}"
                                                           for r in sb3]
    lines.append(f"| judged return, 100 episodes, per seed | {' / '.join(judged[0])} | "
                 f"{' / '.join(judged[1])} | |")
    lines += ["", f"Raw references in the same run: plain PyTorch update of the {widths['ours']} "
              f"network {raw_updates:.0f}/s "
              f"(ours ÷ raw = {median(ours, 'updates_per_s') / raw_updates:.2f}); one env "
              f"{raw_env:.0f} steps/s (ours acting ÷ raw = "
              f"{median(ours, 'env_steps_per_s') / raw_env:.2f})."]
    kedro = "kedro_seconds" in ours[0]
    per_seed = ["", "| seed | ours s | ours steps |" + (" `kedro run` s |" if kedro else "")
                + " SB3 s | SB3 steps |", "|---|---|---|---|---|" + ("---|" if kedro else "")]
    for seed, (a, b) in enumerate(zip(ours, sb3, strict=True)):
        command = f" {a['kedro_seconds']:.1f} |" if kedro else ""
        per_seed.append(f"| {seed} | {a['seconds']:.1f} | {a['env_steps']} |{command} "
                        f"{b['seconds']:.1f} | {b['env_steps']} |")
    return "\n".join(lines + per_seed) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(ZOO), choices=list(ZOO))
    parser.add_argument("--seeds", type=int, default=None,
                        help="seeds per task (default: 5 for CartPole-v1, 3 for MountainCar-v0)")
    parser.add_argument("--hidden", type=int, nargs=2, default=[128, 128],
                        help="our hidden widths (default: the project's 128 128)")
    parser.add_argument("--sb3-hidden", type=int, nargs=2, default=[256, 256],
                        help="SB3's hidden widths (default: RL Zoo's 256 256)")
    parser.add_argument("--n-step", type=int, default=None,
                        help="our n-step targets (default: the project's for the task, "
                             "5 on MountainCar-v0, 3 on CartPole-v1)")
    parser.add_argument("--sb3-n-step", type=int, default=1,
                        help="SB3's n-step targets (default: RL Zoo's 1)")
    parser.add_argument("--no-kedro", action="store_true",
                        help="skip timing the whole `kedro run --pipeline source` command")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/vs_sb3.md"))
    parser.add_argument("--child", nargs=3, metavar=("FRAMEWORK", "ENV", "SEED"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]), tuple(args.hidden),
              args.n_step)
        return
    hidden = {"ours": tuple(args.hidden), "sb3": tuple(args.sb3_hidden)}
    torch.set_num_threads(1)
    report = []
    for env_id in args.tasks:
        n_step = {"ours": args.n_step or N_STEP[env_id], "sb3": args.sb3_n_step}
        results: dict[str, list[dict[str, Any]]] = {"ours": [], "sb3": []}
        for seed in range(args.seeds or DEFAULT_SEEDS[env_id]):
            for framework in RUNNERS:
                results[framework].append(run_child(framework, env_id, seed,
                                                    hidden[framework], n_step[framework]))
                print(env_id, framework, seed, results[framework][-1], flush=True)
            if env_id == SOURCE_TASK and not args.no_kedro:
                results["ours"][-1]["kedro_seconds"] = kedro_source_seconds(seed)
        report.append(table(env_id, results, hidden, n_step,
                            raw_update_rate(env_id, hidden["ours"]), raw_env_rate(env_id)))
        print(report[-1], flush=True)
    args.out.write_text("\n".join(report))


if __name__ == "__main__":
    main()
