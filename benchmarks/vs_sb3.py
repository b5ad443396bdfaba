"""Ours vs Stable-Baselines3 (DQN, or SAC): wall time and env steps to a solving policy, in one
run.

    pip install torch==2.13.0 -e ".[bench]"
    python benchmarks/vs_sb3.py                        # CartPole-v1 × 5 seeds, MountainCar-v0 × 3
    python benchmarks/vs_sb3.py --algo sac             # Pendulum-v1 × 5, MountainCarContinuous × 3
    python benchmarks/vs_sb3.py --tasks CartPole-v1    # our defaults vs RL Zoo's
    python benchmarks/vs_sb3.py --tasks CartPole-v1 --sb3-hidden 128 128 --sb3-n-step 3
    python benchmarks/vs_sb3.py --tasks MountainCar-v0 --sb3-hidden 128 128 --sb3-n-step 5
                                                       # SB3 given our network and targets
    python benchmarks/vs_sb3.py --tasks MiniGrid-DoorKey-5x5-v0 --out benchmarks/vs_sb3_doorkey.md
                                                       # × 3 seeds, the same CNN on each side

By default each side runs as shipped: ours with the project's defaults (RL Zoo's tuned DQN
settings for the task, a 128-128 network, n-step targets: 3 steps on CartPole-v1, 5 on
MountainCar-v0), SB3 with RL Zoo's (the same settings, a 256-256 network, one-step targets);
``--sb3-hidden`` and ``--sb3-n-step`` give SB3 ours, ``--hidden`` and ``--n-step`` change
ours. Both use one torch thread and the same evaluation protocol: every 2,500 env steps, 20
episodes on fixed seeds (our ``GreedyEvaluator`` plays SB3's Q-network too, greedily; ours
plays as its learning curve does, its argmax or a ``dqn.acting_temperatures`` temperature that
scores higher); training stops at the first point at or above the task's reward threshold, or
at RL Zoo's budget. The policy at that point is then judged on 100 episodes of seeds no run
trains or evaluates on: SB3's greedily, ours as its policy file plays it. Ours runs the
source stage's own code path: 1,000 uniform steps collected, then
``train_from_scratch``. On CartPole-v1, the project's source task, each seed also times the
whole ``kedro run --pipeline source`` command (Kedro's start, collection, pretraining and the
100-episode export included) with that seed, against SB3's whole process.

Every run is a fresh child process, so peak RSS is its own; the training time leaves out
imports and judging, the whole process's time (measured from outside) does not. The frameworks
alternate seed by seed so that drift in machine load hits both. Alongside, the same run
measures two references: the raw PyTorch update (the same double-DQN update written as a plain
loop over pre-made batches) and raw env stepping (one env, uniform actions), so our loop is
also compared with what it is built from. Results: a table on stdout and in ``--out``.
Every child runs numpy's BLAS on one thread, as torch (``ONE_THREAD``).

``--tasks MiniGrid-DoorKey-5x5-v0`` (named only; RL Zoo has no settings for it) compares
DQN with a convolutional network: both sides get the project's ``sources.doorkey`` settings,
read from conf/base (100k budget, 3-step targets, a point every 5,000 env steps), and step the
env the pipeline builds (``make_env``: the 7×7×3 view flattened to 147 entries, 0..10). SB3 is
given THE SAME network, so that the comparison is of the two training loops and not of two
architectures: its ``features_extractor_class`` is our CNN encoder written in plain torch
(``ImageEncoder``: ``(obs − 5) / 5``, read channels-first, 2×2 convolutions of 16-32-64
channels, a linear layer to 64), then ``net_arch=[64]``: our trunk layer and a linear head.
Before the runs, our fresh network copied into SB3's must give the same Q-values. SB3's DQN has no
double-DQN option: it bootstraps from the target network's max, ours double DQN.

``--algo sac`` runs the same protocol with SAC on Pendulum-v1 (threshold -200: it registers
none; RL Zoo's SAC reaches about -150) and MountainCarContinuous-v0 (its registered 90),
learning-curve points every 1,000 env steps on Pendulum (its 20k budget is short) and 2,500
on MountainCarContinuous, our evaluator playing both frameworks' deterministic actions
(ours ``tanh(mean)``, SB3's ``policy.actor(obs, deterministic=True)`` unscaled to the
bounds). SB3 runs with RL Zoo's tuned SAC settings (hyperparams/sac.yml: on
MountainCarContinuous gSDE, a 64-64 network, α fixed at 0.1); ours with the project's, read
from conf/base when the benchmark starts: ``sources.pendulum`` for Pendulum-v1,
``targets.mountaincar_continuous`` (the network of its source, ``sources.mountaincar``) for
MountainCarContinuous-v0, its budget raised to RL Zoo's 50k so that both stop at the same
cap. Ours collects the source stage's 1,000 uniform steps first. The raw reference is the
same SAC update (temperature, twin critics, actor, Polyak step) written as a plain PyTorch
loop over pre-made batches, timed against ``_SACRun.update`` on the same batch size and
network, alone and with several seeds stacked (counted per seed-update). ``--max-steps``
caps every budget, for a quick check that the benchmark runs; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
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
# The minigrid pipeline's source: no RL Zoo entry, so both frameworks get the project's
# settings (conf/base, ``sources.doorkey``) and the same CNN.
CNN_TASK = "MiniGrid-DoorKey-5x5-v0"
DQN_TASKS = [*ZOO, CNN_TASK]
DEFAULT_SEEDS = {"CartPole-v1": 5, "MountainCar-v0": 3, CNN_TASK: 3}
SOURCE_TASK = "CartPole-v1"  # conf/base/parameters_source.yml
PROJECT = Path(__file__).resolve().parents[1]
N_STEP = {"CartPole-v1": 3, "MountainCar-v0": 5}  # ours (conf/base); RL Zoo's are 1

# RL Zoo's tuned SAC hyperparameters (hyperparams/sac.yml), budget included; SB3's defaults
# otherwise (a 256-256 network, α tuned, learning_starts 100, batch 256, one update a step).
ZOO_SAC: dict[str, dict[str, Any]] = {
    "Pendulum-v1": dict(total_steps=20_000, learning_rate=1e-3),
    "MountainCarContinuous-v0": dict(
        total_steps=50_000, learning_rate=3e-4, buffer_size=50_000, batch_size=512,
        ent_coef=0.1, train_freq=32, gradient_steps=32, gamma=0.9999, tau=0.01,
        learning_starts=0, use_sde=True,
        policy_kwargs=dict(log_std_init=-3.67, net_arch=[64, 64])),
}
SAC_SEEDS = {"Pendulum-v1": 5, "MountainCarContinuous-v0": 3}
# Env steps between learning-curve points where not ``EVAL_INTERVAL``: Pendulum's budget is
# short; DoorKey's is the project's (``sources.doorkey``).
EVAL_INTERVALS = {"Pendulum-v1": 1_000, CNN_TASK: 5_000}
# Where conf/base keeps our settings for each task: (file, section, key, the source whose
# network the task's networks take).
PROJECT_CONF = {
    "Pendulum-v1": ("parameters_source.yml", "sources", "pendulum", "pendulum"),
    "MountainCarContinuous-v0": ("parameters_target.yml", "targets", "mountaincar_continuous",
                                 "mountaincar"),
    CNN_TASK: ("parameters_source.yml", "sources", "doorkey", "doorkey"),
}
# The DQN settings both frameworks name alike; SB3 gets ours of them on a project task.
SB3_DQN_KEYS = ("total_steps", "learning_rate", "batch_size", "buffer_size", "learning_starts",
                "gamma", "target_update_interval", "train_freq", "gradient_steps",
                "exploration_fraction", "exploration_initial_eps", "exploration_final_eps",
                "max_grad_norm")
# numpy's BLAS on one thread too, as torch is (set before numpy loads, so in each child): our
# acting and evaluation run in numpy, and OpenBLAS threads a product from about 20 rows on,
# which on a busy machine made DoorKey's CNN on 20 evaluation episodes 100 times slower.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
STACKS = (1, 3)  # seeds per _SACRun timed for the update reference; 3: the pipeline's


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


def project_settings(env_id: str) -> tuple[Any, Any, Any]:
    """Our env, network and SAC or DQN settings for ``env_id`` as conf/base has them, so the
    benchmark measures what the pipeline runs."""
    import yaml

    from hindsight_rl.core.config import DQNConfig, EnvConfig, NetworkConfig, SACConfig
    file, section, key, source = PROJECT_CONF[env_id]
    stage = yaml.safe_load((PROJECT / "conf/base" / file).read_text())[section][key]
    sources = yaml.safe_load((PROJECT / "conf/base/parameters_source.yml").read_text())
    network = sources["sources"][source].get("network", {})
    training = SACConfig(**stage["sac"]) if "sac" in stage else DQNConfig(**stage["dqn"])
    return EnvConfig(**stage["env"]), NetworkConfig(**network), training


def dqn_settings(env_id: str) -> dict[str, Any]:
    """The DQN settings both frameworks train ``env_id`` with, budget included: RL Zoo's, or
    on a project task ours (conf/base)."""
    if env_id in ZOO:
        return ZOO[env_id]
    config = project_settings(env_id)[2]
    return {key: getattr(config, key) for key in SB3_DQN_KEYS}


def env_config(env_id: str) -> Any:
    """The task as both frameworks are judged on it: Pendulum's threshold is our config's,
    DoorKey's view (the 7×7×3 image flattened, range 0..10) and threshold too."""
    from hindsight_rl.core.config import EnvConfig
    return project_settings(env_id)[0] if env_id in PROJECT_CONF else EnvConfig(id=env_id)


def interval_of(env_id: str) -> int:
    return EVAL_INTERVALS.get(env_id, EVAL_INTERVAL)


def threshold_of(env_id: str) -> float:
    from hindsight_rl.core.envs import env_info
    return float(env_info(env_config(env_id)).reward_threshold)


def eval_seeds() -> list[int]:
    return list(range(EVAL_SEED, EVAL_SEED + EVAL_EPISODES))


def judge(env_id: str, actions: Any) -> float:
    """Mean return of the deterministic policy ``actions`` on the held-out episodes."""
    from hindsight_rl.core.evaluation import evaluate_greedy
    seeds = range(JUDGE_SEED, JUDGE_SEED + JUDGE_EPISODES)
    return float(evaluate_greedy(env_config(env_id), actions, seeds).mean())


def warm_start(env: Any, seed: int) -> Any:
    """The source stage's replay preload: ``WARM_STEPS`` uniform steps, seeded by ``seed``."""
    from hindsight_rl.core.config import CollectConfig
    from hindsight_rl.core.envs import env_info
    from hindsight_rl.core.rollouts import behaviour_policy, collect_rollouts
    collect = CollectConfig(steps=WARM_STEPS, policy="uniform", seed=seed)
    act = behaviour_policy(collect, env_info(env), None, np.random.default_rng(seed))
    return collect_rollouts(env, WARM_STEPS, act, seed)


def run_ours(env_id: str, seed: int, hidden: tuple[int, ...], n_step: int, budget: int
             ) -> dict[str, Any]:
    """The source stage's code path with RL Zoo's settings (on DoorKey the project's, its
    CNN included) and stop-on-threshold."""
    from hindsight_rl.core import dqn
    from hindsight_rl.core.config import DQNConfig, EnvConfig, NetworkConfig

    timer = CallTimer()
    dqn.train_burst = timer.wrap(dqn.train_burst,
                                 lambda run, loss_of_batch: run.spec.config.gradient_steps)
    if env_id in ZOO:
        env, network, project = EnvConfig(id=env_id), NetworkConfig(), DQNConfig(**ZOO[env_id])
    else:
        env, network, project = project_settings(env_id)
    config = project.model_copy(update=dict(
        total_steps=budget, eval_interval=interval_of(env_id), eval_episodes=EVAL_EPISODES,
        keep="last", stop_on_threshold=True, n_step=n_step))
    return _train_ours(env_id, env, network.model_copy(update={"hidden_sizes": hidden}),
                       config, seed, timer)


def run_ours_sac(env_id: str, seed: int, hidden: tuple[int, ...], n_step: int, budget: int
                 ) -> dict[str, Any]:
    """The source stage's code path with the project's SAC settings for the task, RL Zoo's
    budget and stop-on-threshold."""
    from hindsight_rl.core import sac
    from hindsight_rl.core.config import NetworkConfig

    timer = CallTimer()
    sac._train_burst = timer.wrap(sac._train_burst, lambda run, config: config.gradient_steps)
    env, _, project = project_settings(env_id)
    config = project.model_copy(update=dict(
        total_steps=budget, eval_interval=interval_of(env_id),
        eval_episodes=EVAL_EPISODES, keep="last", stop_on_threshold=True, n_step=n_step))
    return _train_ours(env_id, env, NetworkConfig(hidden_sizes=hidden), config, seed, timer)


def _train_ours(env_id: str, env: Any, network: Any, config: Any, seed: int, timer: CallTimer
                ) -> dict[str, Any]:
    """Warm start and ``train_from_scratch`` timed, as the source stage runs them; the
    trained policy judged as its policy file plays it (a Q-network's argmax, or its
    Boltzmann draws where the file has an acting temperature)."""
    from hindsight_rl.core import dqn
    from hindsight_rl.core.training import train_from_scratch

    evals = CallTimer()
    dqn.GreedyEvaluator.run = evals.wrap(dqn.GreedyEvaluator.run, lambda *a: 0)
    start = time.perf_counter()
    warm = warm_start(env, seed)
    [(policy, history)] = train_from_scratch(env, network, config, {seed: warm}, eval_seeds(),
                                             label=f"ours {env_id}")
    seconds = time.perf_counter() - start
    curve = history[history["metric"] == "eval_return"]
    return _record(env_id, seconds, curve["env_step"].to_numpy(), curve["value"].to_numpy(),
                   timer, evals.seconds, judge(env_id, file_player(policy)))


def file_player(policy: Any) -> Any:
    """``policy`` played from its file's bytes, as the pipeline's evaluation plays it."""
    from hindsight_rl.core.policy_file import NumpyPolicy, policy_to_bytes
    return NumpyPolicy(policy_to_bytes(policy)).player(JUDGE_SEED)


def run_sb3(env_id: str, seed: int, hidden: tuple[int, ...], n_step: int, budget: int
            ) -> dict[str, Any]:
    """SB3 DQN with the same settings; a callback runs our evaluator and stops at threshold.
    On DoorKey, SB3 steps the env ours does (``make_env``: the image flattened) and gets
    our CNN as its features extractor (``hidden[0]`` wide), then ``net_arch`` the rest."""
    from stable_baselines3 import DQN

    from hindsight_rl.core.envs import make_env
    from hindsight_rl.core.evaluation import greedy

    settings = {key: value for key, value in dqn_settings(env_id).items()
                if key != "total_steps"}
    env, policy_kwargs = env_id, {"net_arch": list(hidden)}
    if env_id == CNN_TASK:
        env, policy_kwargs = make_env(env_config(env_id)), sb3_cnn_policy_kwargs(env_id, hidden)
    model = DQN("MlpPolicy", env, seed=seed, device="cpu", verbose=0,
                optimize_memory_usage=False, policy_kwargs=policy_kwargs, n_steps=n_step,
                **settings)

    def q_values(obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model.q_net(torch.as_tensor(obs, dtype=torch.float32)).numpy()

    return _learn_sb3(env_id, model, greedy(q_values), budget, interval_of(env_id))


def check_same_network(env_id: str, hidden: tuple[int, ...]) -> str:
    """That SB3's Q-network (``sb3_cnn_policy_kwargs``) is ours: a fresh network of ours
    (as the source stage makes it) copied into SB3's, layer by layer, must give the same
    Q-values on observations of uniform play; raises if not. The line for the report."""
    from network_types import load_plain_cnn  # benchmarks/ is the script's folder
    from stable_baselines3 import DQN

    from hindsight_rl.core.envs import make_env
    from hindsight_rl.core.training import fresh_network
    env, network, _ = project_settings(env_id)
    obs = torch.as_tensor(warm_start(env, 0).obs)
    ours = fresh_network(env, network.model_copy(update={"hidden_sizes": hidden}), 0,
                         obs.numpy())
    sb3 = DQN("MlpPolicy", make_env(env), buffer_size=1, device="cpu",
              policy_kwargs=sb3_cnn_policy_kwargs(env_id, hidden)).q_net
    load_plain_cnn(sb3, ours, 0)
    with torch.no_grad():
        encoder = sb3.features_extractor.encoder
        normalised = [torch.equal(encoder.shift, ours.encoder.shift[0, 0]),
                      torch.equal(encoder.scale, ours.encoder.scale[0, 0])]
        gap = float((ours(obs[None])[0] - sb3(obs)).abs().max())
    counts = [sum(p.numel() for p in net.parameters()) for net in (ours, sb3)]
    if not all(normalised) or counts[0] != counts[1] or gap > 1e-5:
        raise AssertionError(f"SB3's network is not ours: normalisation equal {normalised}, "
                             f"parameters {counts}, largest Q-value gap {gap:.2e}")
    return (f"Same network checked: ours copied into SB3's ({counts[0]} parameters each, "
            f"the same input normalisation) gives the same Q-values on {len(obs)} "
            f"observations (largest gap {gap:.1e}).")


class ImageEncoder(torch.nn.Module):
    """Our ``ConvEncoder`` (one member) as ordinary torch modules: the flat image row
    normalised as ``observation_normaliser`` does for the view's declared bounds (on
    DoorKey ``(obs − 5) / 5``), read as channels-first, each convolution followed by a ReLU,
    flattened (channels, height, width), then ``relu(W x + b)`` to ``features``."""

    def __init__(self, network: Any, features: int, low: np.ndarray, high: np.ndarray,
                 image_shape: tuple[int, int, int]) -> None:
        from torch import nn

        from hindsight_rl.core.networks import conv_output_shape, observation_normaliser
        super().__init__()
        self.image_shape = image_shape
        shift, scale = observation_normaliser(low, high, np.zeros((0, len(low)), np.float32))
        self.register_buffer("shift", torch.as_tensor(shift))
        self.register_buffer("scale", torch.as_tensor(scale))
        conv, channels = network.conv, (image_shape[2], *network.conv.channels)
        layers: list[nn.Module] = []
        for c_in, c_out, kernel, stride in zip(channels[:-1], channels[1:], conv.kernels,
                                               conv.strides, strict=True):
            layers += [nn.Conv2d(c_in, c_out, kernel, stride), nn.ReLU()]
        self.convs = nn.Sequential(*layers, nn.Flatten())
        self.linear = nn.Sequential(
            nn.Linear(math.prod(conv_output_shape(image_shape, conv)), features), nn.ReLU())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        height, width, channels = self.image_shape
        x = ((obs - self.shift) * self.scale).view(-1, height, width, channels)
        return self.linear(self.convs(x.permute(0, 3, 1, 2)))


def image_encoder(env_id: str, features: int) -> ImageEncoder:
    """``ImageEncoder`` for ``env_id``'s view and our network's convolutions (conf/base)."""
    from hindsight_rl.core.envs import env_info
    info = env_info(env_config(env_id))
    return ImageEncoder(project_settings(env_id)[1], features, info.obs_low, info.obs_high,
                        info.image_shape)


def sb3_cnn_policy_kwargs(env_id: str, hidden: tuple[int, ...]) -> dict[str, Any]:
    """SB3 ``policy_kwargs`` giving its Q-network ours: our CNN encoder (``ImageEncoder``) as
    its ``features_extractor_class``, ``hidden[0]`` features wide, then ``net_arch`` the
    trunk's widths (ReLU after each) and SB3's linear head, as our trunk and head."""
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    class SameCNN(BaseFeaturesExtractor):
        def __init__(self, observation_space: Any, features_dim: int) -> None:
            super().__init__(observation_space, features_dim)
            self.encoder = image_encoder(env_id, features_dim)

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            return self.encoder(obs)

    return {"features_extractor_class": SameCNN,
            "features_extractor_kwargs": {"features_dim": hidden[0]},
            "net_arch": list(hidden[1:])}


def run_sb3_sac(env_id: str, seed: int, hidden: tuple[int, ...], n_step: int, budget: int
                ) -> dict[str, Any]:
    """SB3 SAC with RL Zoo's settings; played by its actor's deterministic (mean) action."""
    from stable_baselines3 import SAC

    settings = {key: value for key, value in ZOO_SAC[env_id].items() if key != "total_steps"}
    policy_kwargs = {**settings.pop("policy_kwargs", {}), "net_arch": list(hidden)}
    model = SAC("MlpPolicy", env_id, seed=seed, device="cpu", verbose=0,
                policy_kwargs=policy_kwargs, n_steps=n_step, **settings)

    def actions(obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            squashed = model.policy.actor(torch.as_tensor(obs), deterministic=True).numpy()
        return model.policy.unscale_action(squashed)

    return _learn_sb3(env_id, model, actions, budget, interval_of(env_id))


def _learn_sb3(env_id: str, model: Any, actions: Any, budget: int, interval: int
               ) -> dict[str, Any]:
    """``model.learn`` timed, with a callback that plays ``actions`` on our evaluator every
    ``interval`` env steps and stops at the threshold; then the judged row."""
    from stable_baselines3.common.callbacks import BaseCallback

    from hindsight_rl.core.evaluation import GreedyEvaluator

    evaluator = GreedyEvaluator(env_config(env_id), eval_seeds())
    threshold = threshold_of(env_id)
    steps, returns = [], []
    evals = CallTimer()
    evaluate = evals.wrap(lambda: evaluator.run(actions).mean(), lambda: 0)

    class StopOnThreshold(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % interval and self.num_timesteps != budget:
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
                   judge(env_id, actions))


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
    no bookkeeping, the default (per-tensor) Adam, batches made up front. On DoorKey the
    network is our CNN (``ImageEncoder``, then the trunk and head) on view-like batches."""
    from torch import nn

    from hindsight_rl.core.envs import env_info
    settings = dqn_settings(env_id)
    info = env_info(env_config(env_id))
    obs_dim, n_actions, batch = info.obs_dim, info.n_actions, settings["batch_size"]
    image = env_id == CNN_TASK
    torch.manual_seed(0)
    encoder = ([image_encoder(env_id, hidden[0])] if image
               else [nn.Linear(obs_dim, hidden[0]), nn.ReLU()])
    online = nn.Sequential(*encoder, nn.Linear(hidden[0], hidden[1]), nn.ReLU(),
                           nn.Linear(hidden[1], n_actions))
    target = copy.deepcopy(online).requires_grad_(False)
    optimizer = torch.optim.Adam(online.parameters(), lr=settings["learning_rate"])

    def observations() -> torch.Tensor:  # DoorKey's view: integer cells 0..10
        return (torch.randint(0, 11, (batch, obs_dim)).float() if image
                else torch.randn(batch, obs_dim))

    batches = [(observations(), torch.randint(n_actions, (batch, 1)),
                torch.randn(batch), observations(), torch.zeros(batch))
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
    """Env steps/s of one Gymnasium env under uniform actions, resets included; built as
    both frameworks build it (``make_env``: on DoorKey the view flattened)."""
    import gymnasium as gym

    from hindsight_rl.core.envs import make_env
    env = make_env(env_config(env_id))
    env.reset(seed=0)
    space, rng = env.action_space, np.random.default_rng(0)
    continuous = isinstance(space, gym.spaces.Box)
    actions = (rng.uniform(space.low, space.high, size=(steps, *space.shape)).astype(np.float32)
               if continuous else rng.integers(space.n, size=steps))
    as_taken = (lambda action: action) if continuous else int
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(as_taken(action))
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


def raw_sac_update_rate(env_id: str, updates: int = 1_000) -> float:
    """Updates/s of our SAC update written as a plain PyTorch loop: ``nn.Linear`` MLPs of
    our network's widths (an actor, two critics on ``[obs, action]``, their Polyak
    targets), ``torch.optim.Adam`` (per tensor) for each of actor, critics and temperature,
    the same losses and order, the same input normalisation, batches of our batch size made
    up front, no replay buffer. Each backward pass reaches only the weights its optimiser
    steps (``inputs=``), as ours."""
    import gymnasium as gym
    from torch import nn
    _, network, config = project_settings(env_id)
    env = gym.make(env_id)
    obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    low, high = (torch.as_tensor(b, dtype=torch.float32) for b in
                 (env.action_space.low, env.action_space.high))
    scale, bias = (high - low) / 2, (high + low) / 2
    shift, obs_scale = torch.randn(obs_dim), torch.rand(obs_dim) + 0.5
    widths = network.hidden_sizes
    torch.manual_seed(0)

    def mlp(inputs: int, outputs: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        for width_in, width_out in zip((inputs, *widths), widths, strict=False):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()]
        return nn.Sequential(*layers, nn.Linear(widths[-1], outputs))

    actor = mlp(obs_dim, 2 * action_dim)
    critics = nn.ModuleList([mlp(obs_dim + action_dim, 1) for _ in range(2)])
    targets = copy.deepcopy(critics).requires_grad_(False)
    log_alpha = torch.zeros(1, requires_grad=True)
    lr, gamma, target_entropy = config.learning_rate, config.gamma, -float(action_dim)
    actor_optimizer = torch.optim.Adam(actor.parameters(), lr=lr)
    critic_optimizer = torch.optim.Adam(critics.parameters(), lr=lr)
    alpha_optimizer = torch.optim.Adam([log_alpha], lr=lr)
    batch = config.batch_size
    batches = [(torch.randn(batch, obs_dim), torch.rand(batch, action_dim) * 2 - 1,
                torch.randn(batch), torch.randn(batch, obs_dim), torch.zeros(batch))
               for _ in range(64)]

    def sample(obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = actor((obs - shift) * obs_scale).chunk(2, dim=1)
        log_std = log_std.clamp(-20, 2)
        noise = torch.randn_like(mean)
        u = mean + log_std.exp() * noise
        gaussian = -0.5 * noise.pow(2) - log_std - 0.5 * math.log(2 * math.pi)
        squash = 2 * (math.log(2) - u - nn.functional.softplus(-2 * u))
        return torch.tanh(u) * scale + bias, (gaussian - squash - scale.log()).sum(dim=1)

    def q(nets: nn.ModuleList, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x = torch.cat([(obs - shift) * obs_scale, (action - bias) / scale], dim=1)
        return torch.stack([net(x)[:, 0] for net in nets])

    def update(obs, action, reward, next_obs, done) -> None:
        policy_action, log_prob = sample(obs)
        alpha = log_alpha.detach().exp()
        alpha_loss = -(log_alpha * (log_prob.detach() + target_entropy)).mean()
        alpha_optimizer.zero_grad()
        alpha_loss.backward()
        alpha_optimizer.step()
        with torch.no_grad():
            next_action, next_log_prob = sample(next_obs)
            soft = q(targets, next_obs, next_action).amin(0) - alpha * next_log_prob
            y = reward + gamma * (1 - done) * soft
        critic_loss = 0.5 * (q(critics, obs, action) - y).pow(2).mean(dim=1).sum()
        critic_optimizer.zero_grad()
        critic_loss.backward()
        critic_optimizer.step()
        loss = (alpha * log_prob - q(critics, obs, policy_action).amin(0)).mean()
        actor_optimizer.zero_grad()
        loss.backward(inputs=list(actor.parameters()))
        actor_optimizer.step()
        with torch.no_grad():
            for target, online in zip(targets.parameters(), critics.parameters(), strict=True):
                target.lerp_(online, config.tau)

    for i in range(50):
        update(*batches[i % 64])
    start = time.perf_counter()
    for i in range(updates):
        update(*batches[i % 64])
    return updates / (time.perf_counter() - start)


def our_sac_update_rate(env_id: str, seeds: int, updates: int = 1_000) -> float:
    """Seed-updates/s of ``_SACRun.update`` (replay sampling included) on ``seeds`` stacked
    fresh members with the project's network and batch size, preloaded with uniform steps."""
    from hindsight_rl.core.dqn import RunSpec, WarmStart, subnormals_flushed
    from hindsight_rl.core.sac import SACMember, _SACRun
    from hindsight_rl.core.training import fresh_actor_critic
    env, network, config = project_settings(env_id)
    members = []
    for seed in range(seeds):
        warm = warm_start(env, seed)
        preload = WarmStart(warm.obs, warm.action, warm.reward, warm.next_obs, warm.terminated,
                            episode_id=warm.episode_id)
        members.append(SACMember(*fresh_actor_critic(env, network, config, seed, warm.obs),
                                 seed, preload))
    run = _SACRun(members, RunSpec(env, config, eval_seeds()))
    with subnormals_flushed():
        for _ in range(50):
            run.update(config)
        start = time.perf_counter()
        for _ in range(updates):
            run.update(config)
        seconds = time.perf_counter() - start
    for member in run.members:
        member.close()
    return seeds * updates / seconds


def dqn_references(env_id: str, hidden: tuple[int, ...], ours: list[dict[str, Any]]) -> str:
    """The raw double-DQN update and raw env stepping, against our in-training rates."""
    raw_updates, raw_env = raw_update_rate(env_id, hidden), raw_env_rate(env_id)
    width = network_name(env_id, hidden)
    return (f"Raw references in the same run: plain PyTorch update of the {width} "
            f"network {raw_updates:.0f}/s "
            f"(ours ÷ raw = {median(ours, 'updates_per_s') / raw_updates:.2f}); one env "
            f"{raw_env:.0f} steps/s (ours acting ÷ raw = "
            f"{median(ours, 'env_steps_per_s') / raw_env:.2f}).")


def sac_references(env_id: str, hidden: tuple[int, ...], ours: list[dict[str, Any]]) -> str:
    """The plain PyTorch SAC update against ``_SACRun.update`` (alone and stacked, per
    seed-update) and against our in-training rate; raw env stepping against our acting.
    The update references use the project's network: ``--hidden`` changes only training."""
    _, network, config = project_settings(env_id)
    raw, raw_env = raw_sac_update_rate(env_id), raw_env_rate(env_id)
    width = "-".join(map(str, network.hidden_sizes))
    lines = [f"Raw references in the same run: one SAC update of the {width} networks, batch "
             f"{config.batch_size}.", "",
             "| update | seed-updates/s | ÷ plain PyTorch |", "|---|---|---|",
             f"| plain PyTorch loop (pre-made batches) | {raw:.0f} | 1.00 |"]
    for seeds in STACKS:
        rate = our_sac_update_rate(env_id, seeds)
        what = "1 seed" if seeds == 1 else f"{seeds} seeds stacked"
        lines.append(f"| ours, `_SACRun.update`, {what} | {rate:.0f} | {rate / raw:.2f} |")
    training = median(ours, "updates_per_s")
    lines += [f"| ours in training (1 seed, {'-'.join(map(str, hidden))}, median over seeds) | "
              f"{training:.0f} | {training / raw:.2f} |", "",
              f"One env {raw_env:.0f} steps/s (ours acting ÷ raw = "
              f"{median(ours, 'env_steps_per_s') / raw_env:.2f})."]
    return "\n".join(lines)


RUNNERS = {"dqn": {"ours": run_ours, "sb3": run_sb3},
           "sac": {"ours": run_ours_sac, "sb3": run_sb3_sac}}
REFERENCES = {"dqn": dqn_references, "sac": sac_references}


def child(algo: str, framework: str, env_id: str, seed: int, hidden: tuple[int, ...],
          n_step: int, budget: int) -> None:
    torch.set_num_threads(1)
    print(json.dumps(RUNNERS[algo][framework](env_id, seed, hidden, n_step, budget)))


def run_child(algo: str, framework: str, env_id: str, seed: int, hidden: tuple[int, ...],
              n_step: int, budget: int) -> dict[str, Any]:
    """One run in a fresh process; ``process_seconds`` is that whole process's wall time
    (Python's start, imports, training, judging), as a user's script would take."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--child", framework, env_id, str(seed),
                          "--algo", algo, "--hidden", *map(str, hidden),
                          "--n-step", str(n_step), "--max-steps", str(budget)],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, **ONE_THREAD})
    return {**json.loads(out.stdout.strip().splitlines()[-1]),
            "process_seconds": time.perf_counter() - start}


def median(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def table(env_id: str, results: dict[str, list[dict[str, Any]]], hidden: dict[str, tuple],
          n_step: dict[str, int], references: str) -> str:
    """Markdown: medians over seeds per framework, then ours ÷ SB3, the raw ``references``
    and each seed's row."""
    keys = [("seconds", "wall s to threshold (training)", "{:.1f}"),
            ("process_seconds", "whole process s (start, imports, training, judging)",
             "{:.1f}"),
            ("env_steps", "env steps to threshold", "{:.0f}"),
            ("env_steps_per_s", "env steps/s (acting)", "{:.0f}"),
            ("updates_per_s", "updates/s", "{:.0f}"),
            ("peak_rss_mb", "peak RSS MB", "{:.0f}")]
    ours, sb3 = results["ours"], results["sb3"]
    widths = {name: network_name(env_id, sizes) for name, sizes in hidden.items()}
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
    lines += ["", references]
    kedro = "kedro_seconds" in ours[0]
    per_seed = ["", "| seed | ours s | ours steps | ours judged | ours RSS MB |"
                + (" `kedro run` s |" if kedro else "")
                + " SB3 s | SB3 steps | SB3 judged | SB3 RSS MB |",
                "|---|---|---|---|---|---|---|---|---|" + ("---|" if kedro else "")]
    for seed, (a, b) in enumerate(zip(ours, sb3, strict=True)):
        command = f" {a['kedro_seconds']:.1f} |" if kedro else ""
        per_seed.append(f"| {seed} | {_seed_cells(a)} |{command} {_seed_cells(b)} |")
    return "\n".join(lines + per_seed) + "\n"


def network_name(env_id: str, hidden: tuple[int, ...]) -> str:
    return ("CNN " if env_id == CNN_TASK else "") + "-".join(map(str, hidden))


def _seed_cells(row: dict[str, Any]) -> str:
    return (f"{row['seconds']:.1f} | {row['env_steps']} | {row['judged_return']:.1f} | "
            f"{row['peak_rss_mb']:.0f}")


def settings_of(algo: str, env_id: str, args: argparse.Namespace
                ) -> tuple[dict[str, tuple[int, ...]], dict[str, int], int]:
    """Each framework's hidden widths and n-step targets for ``env_id`` (the command line's,
    else each side's own: ours from conf/base, SB3's from RL Zoo; on DoorKey, which RL Zoo
    has not, ours on both sides), and the budget both share (RL Zoo's, on DoorKey ours,
    capped by ``--max-steps``)."""
    sb3_n_step = 1
    if algo == "dqn" and env_id in ZOO:
        ours_hidden, ours_n_step, sb3_hidden = (128, 128), N_STEP[env_id], (256, 256)
        budget = ZOO[env_id]["total_steps"]
    elif algo == "dqn":
        _, network, config = project_settings(env_id)
        ours_hidden = sb3_hidden = tuple(network.hidden_sizes)
        ours_n_step = sb3_n_step = config.n_step
        budget = config.total_steps
    else:
        _, network, config = project_settings(env_id)
        ours_hidden, ours_n_step = tuple(network.hidden_sizes), config.n_step
        zoo = ZOO_SAC[env_id]
        sb3_hidden = tuple(zoo.get("policy_kwargs", {}).get("net_arch", (256, 256)))
        budget = zoo["total_steps"]
    hidden = {"ours": tuple(args.hidden or ours_hidden),
              "sb3": tuple(args.sb3_hidden or sb3_hidden)}
    n_step = {"ours": args.n_step or ours_n_step, "sb3": args.sb3_n_step or sb3_n_step}
    return hidden, n_step, min(budget, args.max_steps or budget)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", choices=list(RUNNERS), default="dqn",
                        help=f"dqn (CartPole-v1, MountainCar-v0; {CNN_TASK} on request) "
                             "or sac (Pendulum-v1, MountainCarContinuous-v0)")
    parser.add_argument("--tasks", nargs="+", default=None, choices=[*DQN_TASKS, *ZOO_SAC],
                        help=f"default: the algorithm's two RL Zoo tasks ({CNN_TASK}, with "
                             "a CNN on both sides, only when named)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="seeds per task (default: 5 for CartPole-v1 and Pendulum-v1, "
                             "3 for MountainCar-v0, MountainCarContinuous-v0 and "
                             f"{CNN_TASK})")
    parser.add_argument("--hidden", type=int, nargs=2, default=None,
                        help="our hidden widths (default: the project's, 128 128; 64 64 on "
                             "DoorKey, the first the CNN's features)")
    parser.add_argument("--sb3-hidden", type=int, nargs=2, default=None,
                        help="SB3's hidden widths (default: RL Zoo's: 256 256, 64 64 for "
                             "SAC on MountainCarContinuous-v0; ours on DoorKey)")
    parser.add_argument("--n-step", type=int, default=None,
                        help="our n-step targets (default: the project's for the task, "
                             "5 on MountainCar-v0, 3 on CartPole-v1 and DoorKey, 1 with SAC)")
    parser.add_argument("--sb3-n-step", type=int, default=None,
                        help="SB3's n-step targets (default: RL Zoo's 1; ours, 3, on "
                             "DoorKey)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="cap on every budget (default: RL Zoo's): a quick check only")
    parser.add_argument("--no-kedro", action="store_true",
                        help="skip timing the whole `kedro run --pipeline source` command")
    parser.add_argument("--out", type=Path, default=None,
                        help="default: benchmarks/vs_sb3.md (dqn), benchmarks/vs_sb3_sac.md "
                             "(sac)")
    parser.add_argument("--child", nargs=3, metavar=("FRAMEWORK", "ENV", "SEED"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.algo, args.child[0], args.child[1], int(args.child[2]),
              tuple(args.hidden), args.n_step, args.max_steps)
        return
    zoo, allowed, seeds = ((ZOO, DQN_TASKS, DEFAULT_SEEDS) if args.algo == "dqn"
                           else (ZOO_SAC, list(ZOO_SAC), SAC_SEEDS))
    tasks = args.tasks or list(zoo)
    if set(tasks) - set(allowed):
        parser.error(f"--algo {args.algo} runs on {', '.join(allowed)}; got {', '.join(tasks)}")
    out = args.out or Path("benchmarks/vs_sb3.md" if args.algo == "dqn"
                           else f"benchmarks/vs_sb3_{args.algo}.md")
    torch.set_num_threads(1)
    report = []
    for env_id in tasks:
        hidden, n_step, budget = settings_of(args.algo, env_id, args)
        results: dict[str, list[dict[str, Any]]] = {"ours": [], "sb3": []}
        checks = ([check_same_network(env_id, hidden["ours"])]
                  if env_id == CNN_TASK and hidden["ours"] == hidden["sb3"] else [])
        print(*checks, flush=True)
        for seed in range(args.seeds or seeds[env_id]):
            for framework in RUNNERS[args.algo]:
                results[framework].append(run_child(args.algo, framework, env_id, seed,
                                                    hidden[framework], n_step[framework],
                                                    budget))
                print(env_id, framework, seed, results[framework][-1], flush=True)
            if env_id == SOURCE_TASK and not args.no_kedro:
                results["ours"][-1]["kedro_seconds"] = kedro_source_seconds(seed)
        references = REFERENCES[args.algo](env_id, hidden["ours"], results["ours"])
        report.append(table(env_id, results, hidden, n_step, "\n\n".join([*checks, references])))
        print(report[-1], flush=True)
    out.write_text("\n".join(report))


if __name__ == "__main__":
    main()
