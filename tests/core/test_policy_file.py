import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load as load_torch_bytes
from safetensors.torch import save as save_torch_bytes

from hindsight_rl.core.config import EnvConfig, GoalConfig, NetworkConfig
from hindsight_rl.core.networks import QNetwork, TransferError, transfer_parts
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
    obs = torch.randn(1, 16, 4)
    with torch.no_grad():
        assert torch.equal(loaded.network(obs), policy.network(obs))
    assert loaded.env == policy.env and loaded.frozen == ("trunk",)


def test_plain_numpy_forward_matches_torch(policy):
    obs = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    with torch.no_grad():
        expected = policy.network(torch.from_numpy(obs)[None])[0].numpy()
    numpy_policy = NumpyPolicy(policy_to_bytes(policy))
    np.testing.assert_allclose(numpy_policy.q_values(obs), expected, rtol=1e-5, atol=1e-5)
    assert numpy_policy.act(obs[0]) == int(expected[0].argmax())


def test_document_follows_the_design_contract(policy):
    document = read_document(policy_to_bytes(policy))
    assert document["format"] == "hindsight-rl/q-network" and document["format_version"] == 2
    assert document["kind"] == "q_network" and "action" not in document
    assert document["parts"] == {"encoder": [0], "trunk": [1, 2], "head": [3]}
    assert [layer["activation"] for layer in document["layers"]] == ["relu"] * 3 + [None]
    assert document["env"]["overrides"] == {"length": 1.0}
    assert document["observation"]["shape"] == [4]


@pytest.fixture
def goal_policy() -> Policy:
    """MountainCar's goal-conditioned network: input = position, velocity, desired position."""
    torch.manual_seed(1)
    network = QNetwork(3, 3, NetworkConfig(hidden_sizes=(8, 8)),
                       shift=np.array([-0.3, 0.0, -0.3], np.float32),
                       scale=np.array([1.1, 14.0, 1.1], np.float32))
    env = EnvConfig(id="MountainCar-v0", goal=GoalConfig(achieved=(0,), desired=(0.5,)))
    return Policy(network=network, env=env, gamma=0.98)


def test_goal_entry_carries_the_desired_goal_and_its_normalisation(goal_policy):
    document = read_document(policy_to_bytes(goal_policy))
    assert document["observation"] == {"shape": [2], "shift": [pytest.approx(-0.3), 0.0],
                                       "scale": [pytest.approx(1.1), 14.0]}
    goal = document["goal"]
    assert goal["desired"] == [0.5] and goal["achieved"] == [0]
    assert goal["shift"] == [pytest.approx(-0.3)] and goal["scale"] == [pytest.approx(1.1)]
    assert "goal" not in document["env"]
    assert policy_from_bytes(policy_to_bytes(goal_policy)).env == goal_policy.env


def test_goal_policy_plays_from_raw_observations(goal_policy):
    obs = np.random.default_rng(0).uniform(-1, 0.5, size=(16, 2)).astype(np.float32)
    with_goal = np.concatenate([obs, np.full((16, 1), 0.5, np.float32)], axis=1)
    with torch.no_grad():
        expected = goal_policy.network(torch.from_numpy(with_goal)[None])[0].numpy()
    numpy_policy = NumpyPolicy(policy_to_bytes(goal_policy))
    np.testing.assert_allclose(numpy_policy.q_values(obs), expected, rtol=1e-5, atol=1e-5)


def test_broken_goal_entry_is_an_error(goal_policy):
    data = _with_document(policy_to_bytes(goal_policy),
                          lambda doc: doc["goal"].update(scale=[1.0, 2.0]))
    for reader in (policy_from_bytes, NumpyPolicy):
        with pytest.raises(PolicyFileError, match="goal.scale must be 1 finite numbers"):
            reader(data)


def test_same_policy_same_bytes(policy):
    assert policy_to_bytes(policy) == policy_to_bytes(policy)


def _split(data: bytes) -> tuple[dict, dict, bytes]:
    """Header, document and tensor bytes of a policy file."""
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + header_len])
    return header, json.loads(header["__metadata__"]["hindsight_rl"]), data[8 + header_len:]


def _join(header: dict, document: dict, body: bytes) -> bytes:
    header["__metadata__"]["hindsight_rl"] = json.dumps(document)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw + body


def _with_document(data: bytes, edit) -> bytes:
    header, document, body = _split(data)
    edit(document)
    return _join(header, document, body)


def _with_document_text(data: bytes, edit) -> bytes:
    """The file with its document's JSON text edited as text (what json.dumps cannot write)."""
    header, document, body = _split(data)
    header["__metadata__"]["hindsight_rl"] = edit(json.dumps(document))
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw + body


def _nested_provenance(depth: int):
    return lambda d: _with_document_text(
        d, lambda text: text.replace('"provenance": {"seed": 0}',
                                     '"provenance": ' + "[" * depth + "]" * depth))


def _retyped(dtype: torch.dtype, name: str = "head.bias"):
    """The file with one tensor stored as ``dtype`` (the document unchanged)."""
    def damage(data: bytes) -> bytes:
        header, document, _ = _split(data)
        tensors = load_torch_bytes(data)
        tensors[name] = tensors[name].to(dtype)
        return save_torch_bytes(tensors, metadata=header["__metadata__"])
    return damage


def _with_extra_tensor(data: bytes) -> bytes:
    header, _, _ = _split(data)
    tensors = {**load_torch_bytes(data), "backdoor.weight": torch.zeros(2)}
    return save_torch_bytes(tensors, metadata=header["__metadata__"])


def _with_trunk_named_encoder(data: bytes) -> bytes:
    """Layer 1's tensors renamed ``encoder.1.*`` in the document and the tensors alike."""
    header, document, _ = _split(data)
    tensors = load_torch_bytes(data)
    for key in ("weight", "bias"):
        tensors[f"encoder.1.{key}"] = tensors.pop(f"trunk.0.{key}")
        document["layers"][1][key] = f"encoder.1.{key}"
    return save_torch_bytes(tensors, metadata={"hindsight_rl": json.dumps(document)})


def _with_nan_weight(data: bytes) -> bytes:
    header, document, body = _split(data)
    start, _ = header["head.weight"]["data_offsets"]
    return _join(header, document, body[:start] + np.float32(np.nan).tobytes()
                 + body[start + 4:])


BROKEN_FILES = {
    "truncated": (lambda d: d[:-10], "corrupted tensors|not a hindsight-rl"),
    "garbage header": (lambda d: d[:8] + b"\x00garbage" + d[17:], "not a hindsight-rl"),
    "empty": (lambda d: b"", "not a hindsight-rl"),
    "wrong format": (lambda d: _with_document(d, lambda doc: doc.update(format="other")),
                     "format is 'other'"),
    "wrong format_version": (
        lambda d: _with_document(d, lambda doc: doc.update(format_version=99)),
        "format_version is 99"),
    "missing tensor": (
        lambda d: _with_document(d, lambda doc: doc["layers"][0].update(weight="nope")),
        "tensor 'nope' named in metadata is missing"),
    "shape contradicts metadata": (
        lambda d: _with_document(d, lambda doc: doc["observation"].update(shape=[7])),
        r"has shape \(8, 4\).*expected \(out_features, 7\)"),
    "head contradicts n_actions": (
        lambda d: _with_document(d, lambda doc: doc.update(n_actions=5)),
        "head gives 2 values, metadata says n_actions=5"),
    "layers not a list": (
        lambda d: _with_document(d, lambda doc: doc.update(layers=3)),
        "layers must list the encoder, at least one trunk layer and the head"),
    "non-finite weight": (_with_nan_weight, "head.weight or its bias is not finite"),
    # Only what the format defines, which is what the torch network computes.
    "tanh activation": (
        lambda d: _with_document(d, lambda doc: doc["layers"][1].update(activation="tanh")),
        r"layer 1 \(trunk\) has activation 'tanh'; the format defines 'relu'"),
    "linear hidden layer": (
        lambda d: _with_document(d, lambda doc: doc["layers"][0].update(activation=None)),
        r"layer 0 \(encoder\) has activation None"),
    "relu head": (
        lambda d: _with_document(d, lambda doc: doc["layers"][-1].update(activation="relu")),
        r"layer 3 \(head\) has activation 'relu'"),
    "parts contradict layers": (
        lambda d: _with_document(d, lambda doc: doc["parts"].update(trunk=[1])),
        "parts is .*the format defines"),
    "layer named after another part": (
        _with_trunk_named_encoder, "layer 1 is the trunk, but its weight is named 'encoder.1"),
    "unknown frozen part": (
        lambda d: _with_document(d, lambda doc: doc.update(frozen=["torso"])),
        "frozen is \\['torso'\\]"),
    "gamma out of range": (lambda d: _with_document(d, lambda doc: doc.update(gamma=1.5)),
                           r"gamma is 1.5, expected a number in \(0, 1\]"),
    "bfloat16 tensor": (_retyped(torch.bfloat16), "'head.bias' is BF16; a policy file holds F32"),
    "float64 tensor": (_retyped(torch.float64, "trunk.0.weight"), "'trunk.0.weight' is F64"),
    "tensor no layer names": (_with_extra_tensor, "'backdoor.weight' is not named by any layer"),
    # Metadata that would exhaust the stack or memory of a reader is refused up front.
    "deeply nested metadata": (_nested_provenance(100_000), "nested too deeply"),
    "nested past the limit": (_nested_provenance(40), "nested more than 32 levels deep"),
    "NaN in metadata": (
        lambda d: _with_document_text(d, lambda text: text.replace('"seed": 0', '"seed": NaN')),
        "holds NaN, which is not a JSON number"),
    "huge metadata": (
        lambda d: _with_document(d, lambda doc: doc.update(provenance={"x": "y" * 5_000_000})),
        "metadata document of 5000.* characters, more than 4194304"),
}


@pytest.mark.parametrize("case", BROKEN_FILES)
def test_broken_file_is_an_error_naming_file_and_problem(policy, case):
    damage, problem = BROKEN_FILES[case]
    data = damage(policy_to_bytes(policy))
    for reader in (policy_from_bytes, NumpyPolicy):
        with pytest.raises(PolicyFileError, match=problem) as error:
            reader(data, source="runs/p.safetensors")
        assert str(error.value).startswith("runs/p.safetensors: ")


def test_non_finite_weights_are_never_saved(policy):
    with torch.no_grad():
        policy.network.head.weight[0, 0, 0] = float("inf")
    with pytest.raises(PolicyFileError, match="refusing to save a policy whose head.weight"):
        policy_to_bytes(policy)


def test_metadata_that_is_not_json_is_never_saved(policy):
    policy.provenance = {"evaluation": {"mean": float("nan")}}
    with pytest.raises(PolicyFileError, match="refusing to save a policy whose metadata is not "
                                              "JSON"):
        policy_to_bytes(policy)


def test_a_pickle_is_refused_without_running_it(policy, tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (marker.write_text, ("code ran",))

    path = tmp_path / "policy.safetensors"
    torch.save({"head.weight": Exploit()}, path)
    with pytest.raises(PolicyFileError, match="not a hindsight-rl policy file"):
        policy_from_bytes(path.read_bytes(), source=str(path))
    assert not marker.exists()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_only_raise_our_error(data):
    with pytest.raises(PolicyFileError):
        policy_from_bytes(data)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_damaged_bytes_load_or_raise_our_error(policy, data):
    original = bytearray(policy_to_bytes(policy))
    for _ in range(data.draw(st.integers(1, 4))):
        original[data.draw(st.integers(0, len(original) - 1))] = data.draw(st.integers(0, 255))
    try:
        policy_from_bytes(bytes(original))
    except PolicyFileError:
        pass


def test_transfer_copies_only_fitting_parts():
    config = NetworkConfig(hidden_sizes=(8, 8))
    source, target = QNetwork(4, 2, config), QNetwork(2, 3, config)
    assert transfer_parts(source, target) == ["trunk"]
    assert torch.equal(source.trunk[0].weight, target.trunk[0].weight)
    with pytest.raises(TransferError, match="trunk does not fit"):
        transfer_parts(source, QNetwork(2, 3, NetworkConfig(hidden_sizes=(8, 16))))
