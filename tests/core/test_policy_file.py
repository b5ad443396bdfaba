import json

import numpy as np
import pytest
import torch

from hindsight_rl.core.config import EnvConfig, NetworkConfig
from hindsight_rl.core.networks import QNetwork, transfer_parts
from hindsight_rl.core.policy_file import (
    NumpyPolicy,
    Policy,
    PolicyFileError,
    policy_from_bytes,
    policy_to_bytes,
    read_document,
)


@pytest.fixture
def policy() -> Policy:
    torch.manual_seed(0)
    network = QNetwork(4, 2, NetworkConfig(hidden_sizes=(8, 8, 8)),
                       shift=np.array([0.1, 0.2, 0.3, 0.4], np.float32),
                       scale=np.array([1.0, 2.0, 0.5, 4.0], np.float32))
    return Policy(network=network, env=EnvConfig(id="CartPole-v1", overrides={"length": 1.0}),
                  gamma=0.99, frozen=("trunk",), provenance={"seed": 0})


def test_round_trip_reproduces_q_values(policy):
    loaded = policy_from_bytes(policy_to_bytes(policy))
    obs = torch.randn(16, 4)
    with torch.no_grad():
        assert torch.equal(loaded.network(obs), policy.network(obs))
    assert loaded.env == policy.env and loaded.frozen == ("trunk",)


def test_plain_numpy_forward_matches_torch(policy):
    obs = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    with torch.no_grad():
        expected = policy.network(torch.from_numpy(obs)).numpy()
    numpy_policy = NumpyPolicy(policy_to_bytes(policy))
    np.testing.assert_allclose(numpy_policy.q_values(obs), expected, rtol=1e-5, atol=1e-5)
    assert numpy_policy.act(obs[0]) == int(expected[0].argmax())


def test_document_follows_the_design_contract(policy):
    document = read_document(policy_to_bytes(policy))
    assert document["format"] == "hindsight-rl/q-network" and document["format_version"] == 1
    assert document["parts"] == {"encoder": [0], "trunk": [1, 2], "head": [3]}
    assert [layer["activation"] for layer in document["layers"]] == ["relu"] * 3 + [None]
    assert document["env"]["overrides"] == {"length": 1.0}
    assert document["observation"]["shape"] == [4]


def test_same_policy_same_bytes(policy):
    assert policy_to_bytes(policy) == policy_to_bytes(policy)


def test_truncated_file_is_a_clear_error(policy):
    with pytest.raises(PolicyFileError, match="broken.safetensors"):
        policy_from_bytes(policy_to_bytes(policy)[:-10], source="broken.safetensors")


def test_wrong_format_version_is_refused(policy):
    data = policy_to_bytes(policy)
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + header_len])
    document = json.loads(header["__metadata__"]["hindsight_rl"])
    document["format_version"] = 99
    header["__metadata__"]["hindsight_rl"] = json.dumps(document)
    new_header = json.dumps(header).encode()
    new_header += b" " * (-len(new_header) % 8)
    tampered = len(new_header).to_bytes(8, "little") + new_header + data[8 + header_len:]
    with pytest.raises(PolicyFileError, match="format_version"):
        policy_from_bytes(tampered)


def test_transfer_copies_only_fitting_parts():
    config = NetworkConfig(hidden_sizes=(8, 8))
    source, target = QNetwork(4, 2, config), QNetwork(2, 3, config)
    assert transfer_parts(source, target) == ["trunk"]
    assert torch.equal(source.trunk[0].weight, target.trunk[0].weight)
    with pytest.raises(ValueError, match="trunk does not fit"):
        transfer_parts(source, QNetwork(2, 3, NetworkConfig(hidden_sizes=(8, 16))))
