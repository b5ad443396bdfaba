"""Seconds per env step and per member-update of our DQN loop: the inputs of the cost model
in docs/scaling.md, and the before/after measure of changes to the update.

    python benchmarks/costs.py                 # 1 member (pretraining's stack)
    python benchmarks/costs.py --members 3     # 3 stacked members (an arm's seeds)

Trains 20k steps twice per task with RL Zoo's settings: once without updates (acting,
stepping, storing), once with them; the difference over the number of updates and members
is the cost of one member's update. One torch thread, as in the pipeline; a warm-up run
first, so one-off imports count in neither.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from hindsight_rl.core.config import DQNConfig, EnvConfig, NetworkConfig
from hindsight_rl.core.dqn import Member, train_dqn
from hindsight_rl.core.envs import env_info
from hindsight_rl.core.training import fresh_network

STEPS = 20_000
TASKS = {"CartPole-v1": {"batch_size": 64, "train_freq": 256, "gradient_steps": 128},
         "MountainCar-v0": {"batch_size": 128, "train_freq": 16, "gradient_steps": 8,
                            "gamma": 0.98, "learning_rate": 4e-3}}


def seconds(env_id: str, learning_starts: int, settings: dict, members: int) -> float:
    env = EnvConfig(id=env_id)
    config = DQNConfig(total_steps=STEPS, learning_starts=learning_starts, buffer_size=STEPS,
                       eval_interval=10 * STEPS, eval_episodes=1, **settings)
    observations = np.zeros((0, env_info(env).obs_dim), np.float32)
    stack = [Member(fresh_network(env, NetworkConfig(), seed, observations), seed=seed)
             for seed in range(members)]
    start = time.perf_counter()
    train_dqn(stack, env, config, eval_seeds=[1_000_000])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1, help="stacked members (seeds)")
    members = parser.parse_args().members
    torch.set_num_threads(1)
    seconds("CartPole-v1", 2000, TASKS["CartPole-v1"], 1)  # warm-up: imports, allocator
    for env_id, settings in TASKS.items():
        acting = seconds(env_id, STEPS, settings, members)
        total = seconds(env_id, 1000, settings, members)
        updates = (STEPS - 1000) // settings["train_freq"] * settings["gradient_steps"]
        print(f"{env_id}, {members} member(s): {acting / STEPS * 1e3:.3f} ms per env step, "
              f"{(total - acting) / updates / members * 1e3:.3f} ms per member-update "
              f"(batch {settings['batch_size']}, {updates} updates, {total:.1f} s in all)")


if __name__ == "__main__":
    main()
