import json

import torch

from hindsight_rl.core.config import EnvConfig, NetworkConfig
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.policy_file import Policy, policy_to_bytes
from hindsight_rl.play import main


def test_play_scores_a_policy_file_from_the_file_alone(tmp_path, capsys):
    torch.manual_seed(0)
    network = QNetwork(2, 3, NetworkConfig(hidden_sizes=(4, 4)))
    path = tmp_path / "policy.safetensors"
    path.write_bytes(policy_to_bytes(Policy(network=network, env=EnvConfig(id="MountainCar-v0"),
                                            gamma=0.98)))
    assert main([str(path), "--episodes", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["env"] == "MountainCar-v0" and report["episodes"] == 2
    assert report["mean"] == -200.0  # an untrained network never reaches the flag


def test_play_rejects_a_file_that_is_not_a_policy(tmp_path, capsys):
    path = tmp_path / "notes.safetensors"
    path.write_bytes(b"not a policy")
    assert main([str(path)]) == 1
    assert "not a hindsight-rl policy file" in capsys.readouterr().err
