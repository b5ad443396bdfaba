"""Seconds per env step and per gradient update of our DQN loop: the inputs of the cost model
in docs/scaling.md.

    python benchmarks/costs.py

Trains 20k steps twice per task with RL Zoo's settings: once without updates (acting,
stepping, storing), once with them; the difference over the number of updates is the cost of
one update. One torch thread, as in the pipeline.
"""

from __future__ import annotations

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


def seconds(env_id: str, learning_starts: int, settings: dict) -> float:
    env = EnvConfig(id=env_id)
    config = DQNConfig(total_steps=STEPS, learning_starts=learning_starts, buffer_size=STEPS,
                       eval_interval=10 * STEPS, eval_episodes=1, **settings)
    network = fresh_network(env, NetworkConfig(), 0,
                            np.zeros((0, env_info(env).obs_dim), np.float32))
    start = time.perf_counter()
    train_dqn([Member(network, seed=0)], env, config, eval_seeds=[1_000_000])
    return time.perf_counter() - start


def main() -> None:
    torch.set_num_threads(1)
    for env_id, settings in TASKS.items():
        acting = seconds(env_id, STEPS, settings)
        total = seconds(env_id, 1000, settings)
        updates = (STEPS - 1000) // settings["train_freq"] * settings["gradient_steps"]
        print(f"{env_id}: {acting / STEPS * 1e3:.3f} ms per env step, "
              f"{(total - acting) / updates * 1e3:.2f} ms per update "
              f"(batch {settings['batch_size']}, {updates} updates, {total:.1f} s in all)")


if __name__ == "__main__":
    main()
