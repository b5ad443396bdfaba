import dataclasses
import itertools
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load as load_torch_bytes
from safetensors.torch import save as save_torch_bytes

from hindsight_rl.core.actor_critic import GaussianActor
from hindsight_rl.core.config import (
    ConvConfig,
    EnvConfig,
    GoalConfig,
    NetworkConfig,
    ObservationConfig,
)
from hindsight_rl.core.errors import HindsightRLError
from hindsight_rl.core.evaluation import remembers
from hindsight_rl.core.networks import QNetwork, TransferError, transfer_parts
from hindsight_rl.core.policy_file import (
    NumpyPolicy,
    Policy,
    PolicyFileError,
    check_fits_env,
    policy_from_bytes,
    policy_to_bytes,
    read_document,
    sha256_of,
)
from tests.conftest import conv_policy_with_position_and_goal

FIXTURES = Path(__file__).parent / "fixtures"


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


# --- Version 1: files written before the format knew actors -----------------------------------

def test_a_version_1_file_loads_and_plays_as_the_v1_writer_left_it():
    """``fixtures/policy_v1.safetensors`` was written by the version-1 writer, with the
    Q-values its numpy player gave then; both readers must give the same today."""
    data = (FIXTURES / "policy_v1.safetensors").read_bytes()
    recorded = json.loads((FIXTURES / "policy_v1_q_values.json").read_text())
    obs, expected = np.array(recorded["obs"], np.float32), np.array(recorded["q_values"])
    document = read_document(data)
    assert document["format_version"] == 1 and "kind" not in document
    player = NumpyPolicy(data)
    np.testing.assert_array_equal(player.q_values(obs), expected)
    np.testing.assert_array_equal(player.actions(obs), expected.argmax(axis=1))
    assert player.act(obs[0]) == int(expected[0].argmax())
    loaded = policy_from_bytes(data)
    assert isinstance(loaded.network, QNetwork) and loaded.frozen == ("trunk",)
    with torch.no_grad():
        q_torch = loaded.network(torch.from_numpy(obs)[None])[0].numpy()
    np.testing.assert_allclose(q_torch, expected, rtol=1e-5, atol=1e-6)
    resaved = policy_to_bytes(loaded)  # re-saved as version 2, tensors unchanged
    assert read_document(resaved)["format_version"] == 2
    assert read_document(resaved)["kind"] == "q_network"
    old, new = load_torch_bytes(data), load_torch_bytes(resaved)
    assert old.keys() == new.keys() and all(torch.equal(old[k], new[k]) for k in old)


def test_a_version_1_file_cannot_claim_a_kind():
    data = _with_document((FIXTURES / "policy_v1.safetensors").read_bytes(),
                          lambda doc: doc.update(kind="squashed_gaussian"))
    for reader in (policy_from_bytes, NumpyPolicy):
        with pytest.raises(PolicyFileError, match="format_version 1 has no kind"):
            reader(data)


# --- Version 2: SAC's squashed Gaussian actor --------------------------------------------------

def _actor(obs_dim: int, low, high, hidden: tuple[int, ...], seed: int = 0) -> GaussianActor:
    """An actor with random weights and input normalisation (no training)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    actor = GaussianActor(obs_dim, np.asarray(low, np.float32), np.asarray(high, np.float32),
                          NetworkConfig(hidden_sizes=hidden),
                          shift=rng.normal(size=obs_dim).astype(np.float32),
                          scale=rng.uniform(0.5, 2.0, size=obs_dim).astype(np.float32))
    with torch.no_grad():  # means beyond ±1, so tanh's curve (not its linear middle) is tested
        actor.head.weight.mul_(4.0)
    return actor


@pytest.fixture
def actor_policy() -> Policy:
    actor = _actor(3, [-2.0, 0.1], [1.0, 0.7], (8, 6))
    return Policy(network=actor, env=EnvConfig(id="Pendulum-v1"), gamma=0.99,
                  frozen=("encoder",), provenance={"seed": 0, "algorithm": "sac"})


def test_actor_round_trip_is_bit_identical(actor_policy):
    data = policy_to_bytes(actor_policy)
    loaded = policy_from_bytes(data)
    assert isinstance(loaded.network, GaussianActor)
    original, rebuilt = actor_policy.network.state_dict(), loaded.network.state_dict()
    assert original.keys() == rebuilt.keys()
    assert all(torch.equal(original[key], rebuilt[key]) for key in original), \
        [key for key in original if not torch.equal(original[key], rebuilt[key])]
    assert read_document(policy_to_bytes(loaded)) == read_document(data)
    assert policy_to_bytes(loaded) == data == policy_to_bytes(actor_policy)
    assert sha256_of(loaded) == sha256_of(actor_policy) != sha256_of(
        Policy(network=_actor(3, [-2.0, 0.1], [1.0, 0.7], (8, 6), seed=1),
               env=actor_policy.env, gamma=0.99))
    assert (loaded.env, loaded.gamma, loaded.frozen, loaded.provenance) == (
        actor_policy.env, 0.99, ("encoder",), {"seed": 0, "algorithm": "sac"})


def test_actor_document_follows_the_design_contract(actor_policy):
    data = policy_to_bytes(actor_policy)
    document = read_document(data)
    assert document["format_version"] == 2 and document["kind"] == "squashed_gaussian"
    assert document["n_actions"] is None
    assert document["action"] == {"shape": [2], "low": [-2.0, pytest.approx(0.1)],
                                  "high": [1.0, pytest.approx(0.7)]}
    assert document["log_std_bounds"] == [-20.0, 2.0] and document["squash"] == "tanh"
    assert document["parts"] == {"encoder": [0], "trunk": [1], "head": [2]}
    assert [layer["activation"] for layer in document["layers"]] == ["relu", "relu", None]
    assert tuple(load_torch_bytes(data)["head.weight"].shape) == (4, 6)  # means, log-stds


SHAPES = [(obs_dim, action_dim, hidden)
          for (obs_dim, action_dim), hidden in zip(
              itertools.product(range(1, 6), range(1, 4)),
              itertools.cycle([(4, 4), (16, 8), (5, 7, 3)]))]


@pytest.mark.parametrize(("obs_dim", "action_dim", "hidden"), SHAPES)
def test_numpy_player_acts_as_the_torch_actor(obs_dim, action_dim, hidden):
    rng = np.random.default_rng(obs_dim * 10 + action_dim)
    low = rng.uniform(-3.0, 1.0, size=action_dim)
    high = low + rng.uniform(0.1, 4.0, size=action_dim)  # not symmetric about 0
    actor = _actor(obs_dim, low, high, hidden, seed=obs_dim + action_dim)
    obs = rng.normal(0, 2, size=(64, obs_dim)).astype(np.float32)
    with torch.no_grad():
        expected = actor.deterministic(torch.from_numpy(obs)[None])[0].numpy()
    player = NumpyPolicy(policy_to_bytes(Policy(network=actor, env=EnvConfig(id="Pendulum-v1"),
                                                gamma=0.99)))
    actions = player.actions(obs)
    assert actions.shape == (64, action_dim) and actions.dtype == np.float32
    np.testing.assert_allclose(actions, expected, rtol=0, atol=1e-5)
    assert (actions >= low.astype(np.float32) - 1e-6).all()
    assert (actions <= high.astype(np.float32) + 1e-6).all()
    one = player.act(obs[0])
    assert one.shape == (action_dim,) and one.dtype == np.float32
    np.testing.assert_allclose(one, expected[0], rtol=0, atol=1e-5)


def test_an_actor_has_no_q_values(actor_policy):
    player = NumpyPolicy(policy_to_bytes(actor_policy), source="actor.safetensors")
    with pytest.raises(PolicyFileError, match="actor.safetensors: a squashed_gaussian policy "
                                              "has no Q-values"):
        player.q_values(np.zeros((1, 3), np.float32))


def _head_for(action_dim: int):
    """The document claims ``action_dim``-entry actions (bounds to match); the head still
    gives 4 values (2 entries)."""
    return lambda doc: doc["action"].update(shape=[action_dim], low=[-1.0] * action_dim,
                                            high=[1.0] * action_dim)


BROKEN_ACTORS = {
    "head width": (_head_for(3), "head gives 4 values; an actor of 3-entry actions gives 6"),
    "head width too wide": (_head_for(1), "head gives 4 values; an actor of 1-entry actions"),
    "high below low": (lambda doc: doc["action"].update(low=[1.0, 0.7], high=[-2.0, 0.1]),
                       "action.high must exceed action.low in every entry"),
    "empty box": (lambda doc: doc["action"].update(high=[1.0, 0.1], low=[-2.0, 0.1]),
                  "action.high must exceed action.low"),
    "bound not a number": (lambda doc: doc["action"].update(low=["-2", 0.1]),
                           "action.low must be 2 finite numbers"),
    "too few bounds": (lambda doc: doc["action"].update(high=[1.0]),
                       "action.high must be 2 finite numbers"),
    "action shape": (lambda doc: doc["action"].update(shape=[2, 1]),
                     r"action.shape is \[2, 1\], expected \[width\]"),
    "log_std_bounds": (lambda doc: doc.update(log_std_bounds=[-5, 2]),
                       r"log_std_bounds is \[-5, 2\]; the format defines \[-20.0, 2.0\]"),
    "no log_std_bounds": (lambda doc: doc.pop("log_std_bounds"),
                          "metadata does not describe a network.*log_std_bounds"),
    "squash": (lambda doc: doc.update(squash="clip"), "squash is 'clip'; the format defines"),
    "n_actions": (lambda doc: doc.update(n_actions=2), "n_actions is 2; an actor's actions"),
    "unknown kind": (lambda doc: doc.update(kind="gaussian"), "kind is 'gaussian', expected"),
    "no kind": (lambda doc: doc.pop("kind"), "kind is None, expected one of"),
    "no action": (lambda doc: doc.pop("action"),
                  "metadata does not describe a network.*'action'"),
}


@pytest.mark.parametrize("case", BROKEN_ACTORS)
def test_a_malformed_actor_file_is_an_error_naming_the_problem(actor_policy, case):
    damage, problem = BROKEN_ACTORS[case]
    data = _with_document(policy_to_bytes(actor_policy), damage)
    for reader in (policy_from_bytes, NumpyPolicy):
        with pytest.raises(PolicyFileError, match=problem) as error:
            reader(data, source="runs/actor.safetensors")
        assert str(error.value).startswith("runs/actor.safetensors: ")


def test_an_infinite_bound_is_refused(actor_policy):
    """``1e999`` is valid JSON that Python reads as infinity."""
    data = _with_document_text(policy_to_bytes(actor_policy),
                               lambda text: text.replace('"high": [1.0', '"high": [1e999'))
    for reader in (policy_from_bytes, NumpyPolicy):
        with pytest.raises(PolicyFileError, match="action.high must be 2 finite numbers"):
            reader(data)


def _info(obs_dim: int, n_actions: int | None = None, low=None, high=None) -> SimpleNamespace:
    """The fields of ``EnvInfo`` that ``check_fits_env`` reads."""
    low, high = (None if b is None else np.asarray(b, np.float32) for b in (low, high))
    return SimpleNamespace(obs_dim=obs_dim, n_actions=n_actions, action_low=low,
                           action_high=high)


def test_an_actor_fits_only_its_own_action_box(actor_policy):
    document = read_document(policy_to_bytes(actor_policy))
    check_fits_env(document, "Box-v0", _info(3, low=[-2.0, 0.1], high=[1.0, 0.7]), "a")
    misfits = {
        "other bounds": _info(3, low=[-2.0, 0.1], high=[2.0, 0.7]),
        "other width": _info(3, low=[-2.0], high=[1.0]),
        "other observations": _info(4, low=[-2.0, 0.1], high=[1.0, 0.7]),
    }
    for info in misfits.values():
        with pytest.raises(PolicyFileError, match=r"a: the actor takes 3-entry observations "
                                                  r"and gives 2-entry actions in \[\[-2, 0.1\], "
                                                  r"\[1, 0.7\]\], but Box-v0"):
            check_fits_env(document, "Box-v0", info, "a")


def test_an_actor_and_a_q_network_refuse_the_other_kind_of_env(actor_policy, policy):
    actor = read_document(policy_to_bytes(actor_policy))
    with pytest.raises(PolicyFileError, match="a: the network is a squashed Gaussian actor, "
                                              "which plays continuous actions, but CartPole-v1 "
                                              "has 2 discrete actions"):
        check_fits_env(actor, "CartPole-v1", _info(3, n_actions=2), "a")
    q_network = read_document(policy_to_bytes(policy))
    with pytest.raises(PolicyFileError, match="q: the network is a Q-network, which plays "
                                              "discrete actions, but Pendulum-v1's actions are "
                                              "continuous"):
        check_fits_env(q_network, "Pendulum-v1", _info(4, low=[-2.0], high=[2.0]), "q")
    check_fits_env(q_network, "CartPole-v1", _info(4, n_actions=2), "q")


@pytest.fixture
def conv_policy() -> Policy:
    torch.manual_seed(3)
    config = NetworkConfig(hidden_sizes=(16, 16), encoder="cnn",
                           conv=ConvConfig(channels=(4, 8), kernels=(3, 2), strides=(2, 1)))
    shift, scale = np.full(147, 5.0, np.float32), np.full(147, 0.2, np.float32)
    network = QNetwork(147, 7, config, shift, scale, image_shape=(7, 7, 3))
    env = EnvConfig(id="MiniGrid-DoorKey-5x5-v0", success="terminated",
                    observation=ObservationConfig(key="image", high=10.0))
    return Policy(network=network, env=env, gamma=0.99)


def test_a_conv_policy_round_trips_and_plays_in_numpy_as_in_torch(conv_policy):
    data = policy_to_bytes(conv_policy)
    document = read_document(data)
    assert document["format_version"] == 3 and document["observation"]["image"] == [7, 7, 3]
    assert [layer.get("kind") for layer in document["layers"]] == [
        "conv2d", "conv2d", None, None, None]
    assert [layer.get("stride") for layer in document["layers"][:2]] == [2, 1]
    assert document["parts"] == {"encoder": [0, 1, 2], "trunk": [3], "head": [4]}
    loaded = policy_from_bytes(data)
    assert policy_to_bytes(loaded) == data
    obs = np.random.default_rng(0).integers(0, 11, (6, 147)).astype(np.float32)
    with torch.no_grad():
        expected = conv_policy.network(torch.from_numpy(obs)[None])[0].numpy()
        assert np.array_equal(loaded.network(torch.from_numpy(obs)[None])[0].numpy(), expected)
    assert np.allclose(NumpyPolicy(data).q_values(obs), expected, atol=1e-5)
    assert NumpyPolicy(data).act(obs[0]) == int(expected[0].argmax())


def test_entries_after_the_pixels_are_version_5_and_play_in_numpy_as_in_torch():
    policy = conv_policy_with_position_and_goal()
    data = policy_to_bytes(policy)
    document = read_document(data)
    assert document["format_version"] == 5
    assert document["observation"]["shape"] == [149] and document["observation"]["image"] == [
        7, 7, 3]
    assert document["env"]["observation"]["position"] is True
    assert policy_to_bytes(policy_from_bytes(data)) == data
    rng = np.random.default_rng(1)
    obs = np.concatenate([rng.integers(0, 11, (6, 147)), rng.integers(1, 7, (6, 2))], axis=1)
    with torch.no_grad():
        expected = policy.network(torch.from_numpy(
            np.concatenate([obs, np.full((6, 2), 6.0)], axis=1).astype(np.float32))[None])[0]
    assert np.allclose(NumpyPolicy(data).q_values(obs), expected.numpy(), atol=1e-5)


@pytest.mark.parametrize("version", [3, 4])
def test_entries_after_the_pixels_in_an_older_version_are_an_error(version):
    data = _with_document(policy_to_bytes(conv_policy_with_position_and_goal()),
                          lambda d: d.update(format_version=version))
    for reader in (policy_from_bytes, NumpyPolicy):
        with pytest.raises(PolicyFileError, match="equal to observation.shape"):
            reader(data)


def test_a_file_without_convolutions_is_still_written_as_version_2(policy):
    assert read_document(policy_to_bytes(policy))["format_version"] == 2


@pytest.mark.parametrize(("damage", "problem"), [
    (lambda d: d["observation"].pop("image"), "convolutions read an image and only they do"),
    (lambda d: d["observation"].update(image=[7, 7, 4]),
     "whose product is equal to observation.shape"),
    (lambda d: d["layers"][0].update(stride=0), "stride is 0, expected an integer >= 1"),
    (lambda d: d["layers"][2].update(kind="linear"), "a linear layer has no kind"),
    (lambda d: d.update(format_version=2), "convolutions; they are defined from version 3"),
    (lambda d: d["layers"][1].update(stride=4), "expected \\(out_features, 8\\)")])
def test_a_broken_conv_file_is_an_error_naming_the_problem(conv_policy, damage, problem):
    data = _with_document(policy_to_bytes(conv_policy), damage)
    for reader in (policy_from_bytes, NumpyPolicy):
        with pytest.raises(PolicyFileError, match=problem):
            reader(data)


# --- Version 4: a recurrent (gru) Q-network ----------------------------------------------------

def _gru_policy(obs_width: int, hidden: int, trunk: tuple[int, ...], goal: GoalConfig | None,
                seed: int = 0) -> Policy:
    """A gru Q-network with random weights and input normalisation (no training); the goal's
    desired entries are appended to the observation, as for an mlp network."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    width = obs_width + (0 if goal is None else len(goal.desired))
    network = QNetwork(width, 3, NetworkConfig(hidden_sizes=(hidden, *trunk), encoder="gru"),
                       shift=rng.normal(size=width).astype(np.float32),
                       scale=rng.uniform(0.5, 2.0, size=width).astype(np.float32))
    return Policy(network=network, env=EnvConfig(id="MountainCar-v0", goal=goal), gamma=0.98,
                  frozen=("trunk",), provenance={"seed": seed})


GRU_SHAPES = [(2, 8, (8,), None), (5, 32, (16, 8), None),
              (2, 32, (4, 4), GoalConfig(achieved=(0,), desired=(0.5,))),
              (5, 8, (6,), GoalConfig(achieved=(0, 1), desired=(0.5, 0.0)))]


@pytest.mark.parametrize(("obs_width", "hidden", "trunk", "goal"), GRU_SHAPES)
def test_a_gru_policy_round_trips_bit_for_bit(obs_width, hidden, trunk, goal):
    policy = _gru_policy(obs_width, hidden, trunk, goal)
    data = policy_to_bytes(policy)
    document = read_document(data)
    assert document["format_version"] == 4
    assert document["layers"][0] == {
        "kind": "gru", "hidden": hidden, "weight_ih": "encoder.gru.weight_ih",
        "weight_hh": "encoder.gru.weight_hh", "bias_ih": "encoder.gru.bias_ih",
        "bias_hh": "encoder.gru.bias_hh"}
    assert document["parts"] == {"encoder": [0], "trunk": list(range(1, len(trunk) + 1)),
                                 "head": [len(trunk) + 1]}
    in_width = obs_width + (0 if goal is None else len(goal.desired))
    tensors = load_torch_bytes(data)
    weights = policy.network.encoder.gru.member(0)
    assert tuple(tensors["encoder.gru.weight_ih"].shape) == (3 * hidden, in_width)
    assert tuple(tensors["encoder.gru.weight_hh"].shape) == (3 * hidden, hidden)
    assert all(torch.equal(tensors[f"encoder.gru.{name}"], getattr(weights, name))
               for name in weights._fields)
    loaded = policy_from_bytes(data)
    assert loaded.network.config == NetworkConfig(hidden_sizes=(hidden, *trunk), encoder="gru")
    original, rebuilt = policy.network.state_dict(), loaded.network.state_dict()
    assert original.keys() == rebuilt.keys()
    assert all(torch.equal(original[key], rebuilt[key]) for key in original)
    assert policy_to_bytes(loaded) == data
    assert (loaded.env, loaded.frozen, loaded.provenance) == (policy.env, ("trunk",),
                                                              {"seed": 0})


def _episodes(policy: Policy, episodes: int, steps: int = 10) -> np.ndarray:
    """Raw observations (episodes, steps, obs width): what the environment would give."""
    width = policy.network.obs_dim - len(policy.env.goal.desired if policy.env.goal else ())
    return np.random.default_rng(7).normal(0, 2, size=(episodes, steps, width)).astype(
        np.float32)


def _torch_q_values(policy: Policy, obs: np.ndarray) -> np.ndarray:
    """``QNetwork.sequence`` of whole episodes, the desired goal appended at every step."""
    desired = np.asarray(policy.env.goal.desired if policy.env.goal else (), np.float32)
    inputs = np.concatenate([obs, np.broadcast_to(desired, (*obs.shape[:2], len(desired)))],
                            axis=2)
    with torch.no_grad():
        q_values, _ = policy.network.sequence(torch.from_numpy(inputs)[None])
    return q_values[0].numpy()


def _played_q_values(player, obs: np.ndarray) -> np.ndarray:
    """The numpy player's Q-values of episodes played side by side, step by step."""
    player.start(len(obs))
    return np.stack([player.q_values(obs[:, t]) for t in range(obs.shape[1])], axis=1)


@pytest.mark.parametrize(("obs_width", "hidden", "trunk", "goal"), GRU_SHAPES)
def test_the_numpy_player_carries_the_gru_state_as_torch_does(obs_width, hidden, trunk, goal):
    policy = _gru_policy(obs_width, hidden, trunk, goal, seed=obs_width + hidden)
    player = NumpyPolicy(policy_to_bytes(policy)).player()
    assert remembers(player)
    obs = _episodes(policy, 3)
    np.testing.assert_allclose(_played_q_values(player, obs), _torch_q_values(policy, obs),
                               rtol=0, atol=1e-5)


def test_start_forgets_the_episodes_before(policy):
    gru_policy = _gru_policy(2, 8, (8,), None)
    data = policy_to_bytes(gru_policy)
    episodes = _episodes(gru_policy, 2)
    first, second = episodes[:1], episodes[1:]
    alone = [_played_q_values(NumpyPolicy(data).player(), episode) for episode in (first, second)]
    player = NumpyPolicy(data).player()
    in_a_row = [_played_q_values(player, episode) for episode in (first, second)]
    assert np.array_equal(alone[0], in_a_row[0]) and np.array_equal(alone[1], in_a_row[1])
    np.testing.assert_allclose(in_a_row[1][0], _torch_q_values(gru_policy, second)[0],
                               atol=1e-5)
    remembering = player.q_values(first[:, 0])  # no start: the second episode's 11th step
    assert not np.allclose(remembering, alone[0][:, 0])
    actions = player(second[:, 0])
    assert actions.shape == (1,) and actions.dtype.kind == "i"
    assert not remembers(NumpyPolicy(policy_to_bytes(policy)).player())


def test_a_gru_file_is_played_only_with_its_memory():
    player = NumpyPolicy(policy_to_bytes(_gru_policy(2, 8, (8,), None)), source="gru.st")
    obs = np.zeros((2, 2), np.float32)
    for play in (player.q_values, player.actions, lambda o: player.act(o[0])):
        with pytest.raises(PolicyFileError, match="gru.st: a gru policy remembers its episode"):
            play(obs)
    recurrent = player.player()
    with pytest.raises(HindsightRLError, match=r"2 observations for the episodes started "
                                               r"\(none\); call start\(episodes\)"):
        recurrent(obs)
    recurrent.start(3)
    with pytest.raises(HindsightRLError, match=r"started \(3\)"):
        recurrent(obs)


def _with_tensor(name: str, tensor: torch.Tensor):
    """The file with one tensor replaced (the document unchanged)."""
    def damage(data: bytes) -> bytes:
        header, _, _ = _split(data)
        return save_torch_bytes({**load_torch_bytes(data), name: tensor},
                                metadata=header["__metadata__"])
    return damage


def _with_gru_tensor_renamed(key: str, name: str):
    """The gru layer's ``key`` tensor renamed ``name`` in the document and the tensors alike."""
    def damage(data: bytes) -> bytes:
        _, document, _ = _split(data)
        tensors = load_torch_bytes(data)
        tensors[name] = tensors.pop(document["layers"][0][key])
        document["layers"][0][key] = name
        return save_torch_bytes(tensors, metadata={"hindsight_rl": json.dumps(document)})
    return damage


def _document_edit(edit):
    return lambda data: _with_document(data, edit)


def _swap_first_layers(document: dict) -> None:
    document["layers"][:2] = document["layers"][1::-1]


BROKEN_GRU_FILES = {
    "gru in version 3": (_document_edit(lambda doc: doc.update(format_version=3)),
                         "format_version 3 has no gru layers; they are defined from version 4"),
    "gru at index 1": (_document_edit(_swap_first_layers),
                       "layer 1 is a gru layer; the format defines one, layer 0"),
    "wrong weight_hh shape": (
        _with_tensor("encoder.gru.weight_hh", torch.zeros(24, 7)),
        r"encoder.gru.weight_hh has shape \(24, 7\); expected \(24, 8\): a gru of hidden 8 "
        r"over 2-entry inputs"),
    "hidden mismatch": (_document_edit(lambda doc: doc["layers"][0].update(hidden=16)),
                        r"encoder.gru.weight_ih has shape \(24, 2\); expected \(48, 2\)"),
    "trunk reads another width": (
        _with_tensor("trunk.0.weight", torch.zeros(6, 9)),
        r"trunk.0.weight has shape \(6, 9\).*expected \(out_features, 8\)"),
    "hidden not an integer": (_document_edit(lambda doc: doc["layers"][0].update(hidden=8.0)),
                              "layer 0's hidden is 8.0, expected an integer >= 1"),
    "hidden zero": (_document_edit(lambda doc: doc["layers"][0].update(hidden=0)),
                    "layer 0's hidden is 0, expected an integer >= 1"),
    "gru with an activation": (
        _document_edit(lambda doc: doc["layers"][0].update(activation="relu")),
        r"layer 0 \(gru\) has activation 'relu'; the format defines none"),
    "gru beside convolutions": (
        _document_edit(lambda doc: doc["layers"].insert(1, {**doc["layers"][1],
                                                            "kind": "conv2d", "stride": 1})),
        "a gru encoder reads observation vectors; the format defines no conv2d"),
    "gru in an actor": (
        _document_edit(lambda doc: doc.update(kind="squashed_gaussian", n_actions=None)),
        "a squashed_gaussian network has a gru layer; the format defines gru encoders for "
        "Q-networks only"),
    "non-finite gru tensor": (
        _with_tensor("encoder.gru.bias_hh", torch.full((24,), float("nan"))),
        "encoder.gru.bias_hh is not finite"),
    "missing gru tensor": (
        _document_edit(lambda doc: doc["layers"][0].update(weight_hh="encoder.gru.w")),
        "tensor 'encoder.gru.w' named in metadata is missing"),
    "gru tensor named after the trunk": (
        _with_gru_tensor_renamed("bias_ih", "trunk.gru.bias_ih"),
        "layer 0 is the encoder, but its bias_ih is named 'trunk.gru.bias_ih'"),
}


@pytest.mark.parametrize("case", BROKEN_GRU_FILES)
def test_a_broken_gru_file_is_an_error_naming_the_problem(case):
    damage, problem = BROKEN_GRU_FILES[case]
    data = damage(policy_to_bytes(_gru_policy(2, 8, (6,), None)))
    for reader in (policy_from_bytes, NumpyPolicy):
        with pytest.raises(PolicyFileError, match=problem) as error:
            reader(data, source="runs/gru.safetensors")
        assert str(error.value).startswith("runs/gru.safetensors: ")


def test_files_without_a_gru_keep_their_versions(policy, conv_policy):
    assert read_document(policy_to_bytes(policy))["format_version"] == 2
    assert read_document(policy_to_bytes(conv_policy))["format_version"] == 3


# --- Version 6: a Q-network played by Boltzmann draws -------------------------------------------


def _hot(policy: Policy, temperature: float) -> Policy:
    return dataclasses.replace(policy, acting_temperature=temperature)


def test_a_temperature_is_written_as_version_6_and_read_back(policy):
    data = policy_to_bytes(_hot(policy, 0.25))
    document = read_document(data)
    assert document["format_version"] == 6
    assert document["acting"] == {"rule": "boltzmann", "temperature": 0.25}
    assert policy_from_bytes(data).acting_temperature == 0.25
    assert policy_to_bytes(policy_from_bytes(data)) == data
    assert "acting" not in read_document(policy_to_bytes(policy))
    assert NumpyPolicy(policy_to_bytes(policy)).temperature == 0.0


def test_a_file_with_a_temperature_draws_its_actions_from_the_softmax(policy):
    obs = np.tile(np.array([[0.3, -0.2, 0.1, 0.5]], np.float32), (4000, 1))
    q_values = NumpyPolicy(policy_to_bytes(policy)).q_values(obs[:1])[0]
    temperature = float(abs(q_values[0] - q_values[1]))  # the gap: neither action is certain
    data = policy_to_bytes(_hot(policy, temperature))
    chosen = NumpyPolicy(data).player(seed=7)(obs)
    softmax = np.exp(q_values / temperature) / np.exp(q_values / temperature).sum()
    np.testing.assert_allclose(np.bincount(chosen, minlength=2) / len(obs), softmax, atol=0.03)
    assert np.array_equal(NumpyPolicy(data).player(seed=7)(obs), chosen)
    assert not np.array_equal(NumpyPolicy(data).player(seed=8)(obs), chosen)
    greedy = NumpyPolicy(policy_to_bytes(policy)).player(seed=7)(obs)
    assert (greedy == q_values.argmax()).all()


@pytest.mark.parametrize(("damage", "problem"), [
    (lambda d: d.update(format_version=5), "acting is defined from format_version 6"),
    (lambda d: d["acting"].update(rule="epsilon"), "the format defines"),
    (lambda d: d["acting"].update(temperature=0), "expected a finite number > 0"),
    (lambda d: d["acting"].update(temperature="hot"), "expected a finite number > 0")])
def test_a_broken_acting_entry_is_an_error_naming_the_problem(policy, damage, problem):
    data = _with_document(policy_to_bytes(_hot(policy, 0.5)), damage)
    for reader in (policy_from_bytes, NumpyPolicy):
        with pytest.raises(PolicyFileError, match=problem):
            reader(data)


def test_an_actor_cannot_have_a_temperature(actor_policy):
    data = _with_document(policy_to_bytes(actor_policy), lambda d: d.update(
        format_version=6, acting={"rule": "boltzmann", "temperature": 0.5}))
    with pytest.raises(PolicyFileError, match="for a q_network only"):
        NumpyPolicy(data)
