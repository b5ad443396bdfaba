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
from hindsight_rl.core.config import (
    ConvConfig,
    EnvConfig,
    GoalConfig,
    NetworkConfig,
    ObservationConfig,
)
from hindsight_rl.core.envs import make_env
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.policy_file import NumpyPolicy, Policy, policy_to_bytes
from tests.conftest import PROJECT_ROOT, conv_policy_with_position_and_goal

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


def test_the_judge_plays_a_conv_file_on_the_observation_the_file_selects(tmp_path):
    torch.manual_seed(3)
    config = NetworkConfig(hidden_sizes=(16, 16), encoder="cnn",
                           conv=ConvConfig(channels=(4, 8), kernels=(3, 2), strides=(2, 1)))
    network = QNetwork(147, 7, config, np.full(147, 5.0, np.float32),
                       np.full(147, 0.2, np.float32), image_shape=(7, 7, 3))
    env = EnvConfig(id="MiniGrid-DoorKey-5x5-v0", success="terminated", reward_threshold=0.8,
                    observation=ObservationConfig(key="image", high=10.0))
    path = tmp_path / "conv.safetensors"
    path.write_bytes(policy_to_bytes(Policy(network=network, env=env, gamma=0.99)))
    document, tensors = judge_policies.document_and_tensors(path)
    images = np.random.default_rng(0).integers(0, 11, (6, 7, 7, 3))
    mine = np.stack([judge_policies.forward(document, tensors, judge_policies.observed(
        document, {"image": image, "direction": 0})) for image in images])
    np.testing.assert_allclose(mine, NumpyPolicy(path.read_bytes()).q_values(
        images.reshape(6, -1)), atol=1e-5)
    assert judge_policies.judge(path, 1, 3_000_000)[0::2] == ("MiniGrid-DoorKey-5x5-v0", 0.8)


def test_the_judge_reads_an_image_channels_last_wherever_its_channels_are():
    entry = "tests.core.image_envs:PixelImage"
    for shape, channels in (((3, 4, 5), None), ((4, 5, 3), None), ((4, 4, 4), "first")):
        config = EnvConfig(id="PixelImage-v0", entry_point=entry, make_kwargs={"shape": shape},
                           observation=ObservationConfig(channels=channels))
        raw = np.arange(np.prod(shape)).reshape(shape)
        document = {"env": config.model_dump(mode="json")}
        ours, _ = make_env(config).reset(seed=0)
        assert judge_policies.observed(document, raw).tolist() == ours.tolist()


def test_the_judge_joins_the_agents_cell_and_the_goal_to_the_convolutions(tmp_path):
    path = tmp_path / "conv_position.safetensors"
    path.write_bytes(policy_to_bytes(conv_policy_with_position_and_goal()))
    document, tensors = judge_policies.document_and_tensors(path)
    env = judge_policies.make_env(document)
    rng = np.random.default_rng(2)
    rows, mine = [], []
    for seed in range(4):
        obs, _ = env.reset(seed=seed)
        obs["image"] = rng.integers(0, 11, (7, 7, 3))
        seen = judge_policies.observed(document, obs, env)
        assert seen[147:].tolist() == list(env.unwrapped.agent_pos)
        rows.append(seen)
        mine.append(judge_policies.forward(document, tensors, seen))
    np.testing.assert_allclose(np.stack(mine), NumpyPolicy(path.read_bytes()).q_values(
        np.stack(rows)), atol=1e-5)
    assert judge_policies.judge(path, 1, 3_000_000)[0] == "MiniGrid-DoorKey-8x8-v0"


def test_the_judge_carries_a_gru_files_memory_through_an_episode_and_forgets_it_after(
        tmp_path):
    torch.manual_seed(4)
    rng = np.random.default_rng(4)
    network = QNetwork(2, 2, NetworkConfig(hidden_sizes=(8, 8), encoder="gru"),
                       shift=rng.normal(size=2).astype(np.float32),
                       scale=rng.uniform(0.5, 2.0, size=2).astype(np.float32))
    env = EnvConfig(id="CartPole-v1", observation=ObservationConfig(keep=(0, 2)))
    path = tmp_path / "gru.safetensors"
    path.write_bytes(policy_to_bytes(Policy(network=network, env=env, gamma=0.99)))
    document, tensors = judge_policies.document_and_tensors(path)
    episode = rng.uniform(-1, 1, size=(5, 4))
    player = NumpyPolicy(path.read_bytes()).player()
    for _ in range(2):  # a new memory is a new episode: the same values again
        memory: dict = {}
        mine = np.stack([judge_policies.forward(
            document, tensors, judge_policies.observed(document, obs), memory)
            for obs in episode])
        player.start(1)
        np.testing.assert_allclose(mine, np.stack([player.q_values(obs[None, [0, 2]])[0]
                                                   for obs in episode]), atol=1e-5)
    alone = judge_policies.forward(document, tensors, episode[1, [0, 2]], {})
    assert not np.allclose(mine[1], alone)  # the second step remembers the first


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


def test_the_judge_draws_a_boltzmann_files_actions_from_its_softmax(tmp_path):
    path = tmp_path / "hot.safetensors"
    torch.manual_seed(0)  # Q-values 0.31, -0.06, -0.26 at obs: each action drawn at 0.3
    policy = Policy(network=QNetwork(2, 3, NetworkConfig(hidden_sizes=(8, 8))),
                    env=EnvConfig(id="MountainCar-v0"), gamma=0.99, acting_temperature=0.3)
    path.write_bytes(policy_to_bytes(policy))
    document, tensors = judge_policies.document_and_tensors(path)
    obs, rng = np.array([-0.5, 0.01]), np.random.default_rng(0)
    q_values = NumpyPolicy(path.read_bytes()).q_values(obs[None])[0]
    drawn = [judge_policies.action(document, tensors, obs, rng=rng) for _ in range(3000)]
    softmax = np.exp((q_values - q_values.max()) / 0.3)
    np.testing.assert_allclose(np.bincount(drawn, minlength=3) / 3000, softmax / softmax.sum(),
                               atol=0.03)
