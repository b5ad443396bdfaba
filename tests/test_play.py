import json
import sys
from pathlib import Path

import pytest
import safetensors.numpy
import torch

from hindsight_rl.core.config import EnvConfig, NetworkConfig
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.policy_file import (
    Policy,
    PolicyFileError,
    policy_from_bytes,
    policy_to_bytes,
)
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


MARKER_MODULE = '''
import pathlib, os
pathlib.Path(os.environ["MARKER_PATH"]).write_text("code ran")

def run(*args, **kwargs):
    pathlib.Path(os.environ["MARKER_PATH"]).write_text("code ran")
'''


def _crafted(tmp_path, monkeypatch, env_document: dict) -> tuple[Path, Path]:
    """A valid policy file whose env section is replaced by ``env_document``, and the marker
    file that the module it names would write if it were ever imported."""
    marker = tmp_path / "marker"
    (tmp_path / "marker_module.py").write_text(MARKER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("MARKER_PATH", str(marker))
    network = QNetwork(2, 3, NetworkConfig(hidden_sizes=(4, 4)))
    data = policy_to_bytes(Policy(network=network, env=EnvConfig(id="MountainCar-v0"),
                                  gamma=0.98))
    tensors = safetensors.numpy.load(data)
    document = json.loads(json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
                          ["__metadata__"]["hindsight_rl"])
    document["env"] = env_document
    path = tmp_path / "crafted.safetensors"
    path.write_bytes(safetensors.numpy.save(tensors, metadata={
        "hindsight_rl": json.dumps(document)}))
    return path, marker


@pytest.mark.parametrize("env_document", [
    {"id": "Evil-v0", "entry_point": "marker_module:run", "make_kwargs": {"command": "x"},
     "overrides": {}},
    {"id": "marker_module:MountainCar-v0", "make_kwargs": {}, "overrides": {}},
], ids=["entry_point", "module_prefixed_id"])
def test_a_policy_file_never_chooses_code_to_import(tmp_path, monkeypatch, capsys,
                                                     env_document):
    path, marker = _crafted(tmp_path, monkeypatch, env_document)
    assert main([str(path), "--episodes", "1"]) == 1
    assert "Error:" in capsys.readouterr().err
    with pytest.raises(PolicyFileError):
        policy_from_bytes(path.read_bytes())
    assert not marker.exists()
    assert "marker_module" not in sys.modules


def test_a_custom_env_plays_with_the_entry_point_the_user_gives(tmp_path, capsys):
    network = QNetwork(1, 2, NetworkConfig(hidden_sizes=(4, 4)))
    env = EnvConfig(id="PlayedCorridor-v0", entry_point="tests.conftest:CorridorEnv",
                    max_episode_steps=5)
    path = tmp_path / "corridor.safetensors"
    path.write_bytes(policy_to_bytes(Policy(network=network, env=env, gamma=0.9)))
    assert main([str(path), "--episodes", "1"]) == 1
    assert "unknown Gymnasium environment 'PlayedCorridor-v0'" in capsys.readouterr().err
    assert main([str(path), "--episodes", "1",
                 "--entry-point", "tests.conftest:CorridorEnv"]) == 0
    assert json.loads(capsys.readouterr().out)["env"] == "PlayedCorridor-v0"
