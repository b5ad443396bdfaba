"""The quality gate's judge: its own numpy player agrees with the project's, and it fails a
run whose policies miss their threshold or whose transfer hurt."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from hindsight_rl.core.actor_critic import GaussianActor
from hindsight_rl.core.config import EnvConfig, GoalConfig, NetworkConfig
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.policy_file import NumpyPolicy, Policy, policy_to_bytes
from tests.conftest import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
import judge_policies  # noqa: E402

GOAL = GoalConfig(achieved=(0,), desired=(0.5,))


def _policy(goal: GoalConfig | None = None) -> bytes:
    torch.manual_seed(0)
    network = QNetwork(2 + (goal is not None), 3, NetworkConfig(hidden_sizes=(8, 8)),
                       shift=np.array([-0.3, 0.0, -0.3][:2 + (goal is not None)], np.float32),
                       scale=np.array([1.1, 14.0, 1.1][:2 + (goal is not None)], np.float32))
    return policy_to_bytes(Policy(network=network, env=EnvConfig(id="MountainCar-v0", goal=goal),
                                  gamma=0.98))


def test_the_judges_player_is_independent_and_agrees_with_the_projects(tmp_path):
    for goal in (None, GOAL):
        path = tmp_path / "p.safetensors"
        path.write_bytes(_policy(goal))
        document, tensors = judge_policies.document_and_tensors(path)
        obs = np.random.default_rng(0).uniform(-1, 0.5, size=(5, 2))
        mine = np.stack([judge_policies.forward(document, tensors, row) for row in obs])
        np.testing.assert_allclose(mine, NumpyPolicy(path.read_bytes()).q_values(obs),
                                   rtol=1e-6)
    assert "hindsight_rl" not in Path(judge_policies.__file__).read_text().split('"""')[2]


def test_the_judge_plays_an_actor_file_as_the_project_does_and_reads_its_threshold(tmp_path):
    torch.manual_seed(1)
    low, high = np.array([-2.0], np.float32), np.array([2.0], np.float32)
    actor = GaussianActor(3, low, high, NetworkConfig(hidden_sizes=(8, 8)))
    env = EnvConfig(id="Pendulum-v1", reward_threshold=-200.0)
    path = tmp_path / "actor.safetensors"
    path.write_bytes(policy_to_bytes(Policy(network=actor, env=env, gamma=0.99)))
    document, tensors = judge_policies.document_and_tensors(path)
    obs = np.random.default_rng(0).uniform(-1, 1, size=(5, 3))
    mine = np.stack([judge_policies.action(document, tensors, row) for row in obs])
    np.testing.assert_allclose(mine, NumpyPolicy(path.read_bytes()).actions(obs), rtol=1e-5)
    env_id, _, threshold = judge_policies.judge(path, 1, 3_000_000)
    assert (env_id, threshold) == ("Pendulum-v1", -200.0)


def _version(folder: Path, name: str, data: bytes) -> None:
    version = folder / name / "2026-01-01T00.00.00.000Z"
    version.mkdir(parents=True)
    (version / name).write_bytes(data)


def test_a_policy_below_its_threshold_or_a_hurt_verdict_fails_the_gate(tmp_path):
    data = tmp_path / "data"
    _version(data / "06_models/sources/mc", "pretrained_policy.safetensors", _policy())
    metrics = {"verdict": "Transfer hurt: negative transfer (worse final return): ..."}
    _version(data / "08_reporting/mc", "transfer_metrics.json", json.dumps(metrics).encode())
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "scripts/judge_policies.py"),
                             "--data", str(data), "--episodes", "2"],
                            capture_output=True, text=True)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("FAIL 06_models/sources/mc/pretrained_policy.safetensors: "
                               "MountainCar-v0 -200.0 over 2 episodes (threshold -110.0)")
    assert lines[1].startswith("FAIL mc: Transfer hurt")
