"""The portable policy file: safetensors tensors plus a JSON document, no pickle anywhere.

The document (header metadata key ``hindsight_rl``) says everything needed to rebuild the
network or to act greedily with numpy alone; see DESIGN.md, "Policy file". Its ``kind`` says
which network the file holds: a Q-network (discrete actions, played by argmax) or SAC's
squashed Gaussian actor (continuous actions, played by its mean through tanh). Version-1
files, from before actors, have no ``kind`` and are Q-networks. Version 3 adds convolutional
encoders (``conv2d`` layers over ``observation.image``), version 4 a Q-network's recurrent
encoder (one ``gru`` layer, whose hidden state is the features); a file with neither is
written as version 2, so that readers of version 2 keep reading every file they could.
Version 6 adds a Q-network's ``acting`` entry: played by sampling ``softmax(Q / temperature)``
rather than by argmax (:func:`hindsight_rl.core.evaluation.boltzmann`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load as load_numpy_bytes
from safetensors.torch import load as load_torch_bytes
from safetensors.torch import save as save_torch_bytes

from hindsight_rl.core.actor_critic import LOG_STD_MAX, LOG_STD_MIN, GaussianActor
from hindsight_rl.core.artefacts import bounded_json
from hindsight_rl.core.config import (
    PART_NAMES,
    ConvConfig,
    EnvConfig,
    GoalConfig,
    NetworkConfig,
    from_mapping,
)
from hindsight_rl.core.errors import HindsightRLError
from hindsight_rl.core.evaluation import Choice, acting_on, argmax, boltzmann_choice
from hindsight_rl.core.networks import (
    GRUEncoder,
    QNetwork,
    StackedConv2d,
    StackedLinear,
    convolved,
    numpy_forward,
    numpy_layers,
)
from hindsight_rl.core.recurrent import GRUWeights, StackedGRU, numpy_gru_step

FORMAT = "hindsight-rl/q-network"
"""The format's name, kept from version 1 (when it held Q-networks only) so that every reader
recognises every file; ``kind`` says what a version-2 file holds."""
FORMAT_VERSION = 6
READABLE_VERSIONS = (1, 2, 3, 4, 5, 6)
"""Version 1 is version 2 without ``kind`` (always a Q-network): old files keep playing.
Version 3 is version 2 with ``conv2d`` encoder layers, version 4 with a ``gru`` encoder,
version 5 with entries after an image's pixels (the agent's position, a desired goal) that
join the flattened convolutions; each file is written as the oldest version that defines
its network. Version 6 is any of them with an ``acting`` entry (a Boltzmann temperature),
written only when the policy has one."""
CONV_WITH_VECTOR_VERSION = 5
ACTING_VERSION = 6
BOLTZMANN = "boltzmann"
"""The one ``acting.rule`` the format defines: actions drawn from ``softmax(Q / temperature)``."""
CONV2D, GRU = "conv2d", "gru"
"""A convolutional and a recurrent layer's ``kind`` (a layer without ``kind`` is linear)."""
GRU_TENSORS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
"""A gru layer's tensors, named as ``nn.GRUCell`` names them and in its layout."""
Q_NETWORK, SQUASHED_GAUSSIAN = "q_network", "squashed_gaussian"
KINDS = (Q_NETWORK, SQUASHED_GAUSSIAN)
SQUASH = "tanh"
LOG_STD_BOUNDS = [LOG_STD_MIN, LOG_STD_MAX]
"""The actor's squash and log-std clamp: the only ones the format defines, because they are
what :class:`GaussianActor` computes (a file naming others would play differently)."""
METADATA_KEY = "hindsight_rl"
DTYPE = "F32"
"""The one tensor dtype of the format (safetensors' name): a bfloat16 or float64 file would
otherwise be cast on load, silently, or fail inside numpy."""
HIDDEN_ACTIVATION, HEAD_ACTIVATION = "relu", None
"""The activations the format defines: every layer but the head is ReLU, the head linear.
The torch network computes exactly this, so a file naming any other would play differently
in numpy than in torch."""
MAX_HEADER_BYTES = 16 * 2**20
MAX_DOCUMENT_BYTES = 4 * 2**20
"""A policy's document is a few kilobytes (normalisation of each observation entry and
provenance); anything near these limits is not a policy file."""


class PolicyFileError(HindsightRLError, ValueError):
    """A policy file is unreadable or contradicts its own metadata."""


@dataclass
class Policy:
    """A trained network (a Q-network, or a one-member SAC actor) with what it was trained on:
    the in-memory form of a policy file."""

    network: QNetwork | GaussianActor
    env: EnvConfig
    gamma: float
    frozen: tuple[str, ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)
    acting_temperature: float = 0.0
    """A Q-network's Boltzmann temperature: 0 plays the argmax, a positive one samples
    ``softmax(Q / temperature)`` (chosen in training where it plays better,
    ``dqn.acting_temperatures``)."""
    loaded_version: str | None = field(default=None, compare=False, repr=False)
    """The catalog version this policy was loaded from, for reports to cite; not stored in
    the file (a file does not know the folder it is saved in)."""


def policy_to_bytes(policy: Policy) -> bytes:
    """Serialise to safetensors bytes; the same policy always gives the same bytes."""
    tensors = {}
    for prefix, layer in _file_layers(_one_member(policy.network)):
        tensors.update(_layer_tensors(prefix, layer))
    for name, tensor in tensors.items():
        if not torch.isfinite(tensor).all():
            raise PolicyFileError(f"refusing to save a policy whose {name} is not finite")
    try:
        text = json.dumps(_document(policy), sort_keys=True, allow_nan=False)
    except ValueError as error:
        raise PolicyFileError(f"refusing to save a policy whose metadata is not JSON "
                              f"({error}; provenance {policy.provenance!r})") from None
    return save_torch_bytes(tensors, metadata={METADATA_KEY: text})


FileLayer = StackedLinear | StackedConv2d | StackedGRU


def _file_layers(network: QNetwork | GaussianActor) -> list[tuple[str, FileLayer]]:
    """The network's layers in the file's order with their state-dict prefixes: a ``gru``
    encoder's GRU (which ``layers()`` leaves out, being no linear layer), then every
    convolution and linear layer."""
    encoder = network.encoder
    gru = [("encoder.gru", encoder.gru)] if isinstance(encoder, GRUEncoder) else []
    return gru + network.layers()


def _layer_tensors(prefix: str, layer: FileLayer) -> dict[str, torch.Tensor]:
    """One layer's tensors as the file holds them, in torch's own layouts: a GRU's as
    ``nn.GRUCell`` holds them ``(3·hidden, in)``, a convolution's ``(out, in, k, k)``, a
    linear layer's ``(out, in)``."""
    if isinstance(layer, StackedGRU):
        return {f"{prefix}.{name}": tensor.contiguous()
                for name, tensor in layer.member(0)._asdict().items()}
    if isinstance(layer, StackedConv2d):
        return {f"{prefix}.weight": layer.weight[0].detach().contiguous(),
                f"{prefix}.bias": layer.bias[0].detach().contiguous()}
    return {f"{prefix}.weight": layer.weight[0].detach().T.contiguous(),
            f"{prefix}.bias": layer.bias[0, 0].detach().contiguous()}


def _one_member(network: QNetwork | GaussianActor) -> QNetwork | GaussianActor:
    if network.members != 1:
        raise PolicyFileError(f"a policy file holds one network, got a stack of "
                              f"{network.members}")
    return network


def sha256_of(policy: Policy) -> str:
    """Digest of the policy's file bytes, used as ``provenance.parent_sha256`` of children."""
    return hashlib.sha256(policy_to_bytes(policy)).hexdigest()


def _document(policy: Policy) -> dict[str, Any]:
    network = policy.network
    layers, parts = [], {name: [] for name in PART_NAMES}
    for index, (prefix, layer) in enumerate(_file_layers(network)):
        part = prefix.split(".")[0]
        parts[part].append(index)
        layers.append(_layer_entry(prefix, layer, part))
    env = policy.env.model_dump()
    goal = env.pop("goal")  # the document's own "goal" entry: the env is built without it
    # A file never names code to import: a custom environment's entry point stays in the
    # configuration that trained it; its time limit and threshold are data and travel, as
    # does a threshold declared for a registered env that has none (Pendulum-v1).
    if env.pop("entry_point") is None:
        del env["max_episode_steps"]
        if env["reward_threshold"] is None:
            del env["reward_threshold"]
    width = network.obs_dim - policy.env.goal_width
    shift, scale = network.encoder.shift[0, 0].tolist(), network.encoder.scale[0, 0].tolist()
    if goal is not None:
        goal = {**goal, "shift": shift[width:], "scale": scale[width:]}
    actor = isinstance(network, GaussianActor)
    observation = {"shape": [width], "shift": shift[:width], "scale": scale[:width]}
    if network.image_shape is not None:
        observation["image"] = list(network.image_shape)
    document = {
        "format": FORMAT,
        "format_version": max(_format_version(network),
                              ACTING_VERSION if policy.acting_temperature else 0),
        "kind": SQUASHED_GAUSSIAN if actor else Q_NETWORK,
        "env": env,
        "observation": observation,
        "goal": goal,
        "n_actions": None if actor else network.n_actions,
        "layers": layers,
        "parts": parts,
        "frozen": list(policy.frozen),
        "gamma": policy.gamma,
        "provenance": policy.provenance,
    }
    if actor:
        document.update(action=_action_entry(network), log_std_bounds=list(LOG_STD_BOUNDS),
                        squash=SQUASH)
    if policy.acting_temperature:
        document["acting"] = {"rule": BOLTZMANN, "temperature": policy.acting_temperature}
    return document


def _layer_entry(prefix: str, layer: FileLayer, part: str) -> dict[str, Any]:
    """A layer's entry in the document: its tensors' names, its activation (ReLU but for
    the head; a GRU has none, its hidden state being the features) and its kind."""
    if isinstance(layer, StackedGRU):
        return {"kind": GRU, "hidden": layer.hidden,
                **{name: f"{prefix}.{name}" for name in GRU_TENSORS}}
    entry = {"weight": f"{prefix}.weight", "bias": f"{prefix}.bias",
             "activation": None if part == "head" else "relu"}
    if isinstance(layer, StackedConv2d):
        entry.update(kind=CONV2D, stride=layer.stride)
    return entry


def _format_version(network: QNetwork | GaussianActor) -> int:
    """The oldest version that defines the network: 4 for a gru encoder, 5 for a cnn one
    with entries after the pixels, 3 for one without, 2 otherwise (so that readers of an
    older version read every file they could)."""
    if isinstance(network.encoder, GRUEncoder):
        return 4
    if network.image_shape is None:
        return 2
    return CONV_WITH_VECTOR_VERSION if network.obs_dim > network.encoder.pixels else 3


def _action_entry(actor: GaussianActor) -> dict[str, Any]:
    """The action box as ``bias ∓ scale`` summed in float64, which is exact for float32
    operands: ``(high - low) / 2`` and ``(high + low) / 2`` then give back the actor's own
    float32 scale and bias, so a round trip is bit-identical."""
    scale = actor.action_scale[0, 0].double()
    bias = actor.action_bias[0, 0].double()
    return {"shape": [actor.action_dim], "low": (bias - scale).tolist(),
            "high": (bias + scale).tolist()}


def acting_temperature(document: dict[str, Any]) -> float:
    """A checked document's Boltzmann temperature: 0 (the argmax) without ``acting``."""
    return float(document["acting"]["temperature"]) if "acting" in document else 0.0


def policy_kind(document: dict[str, Any]) -> str:
    """What a checked document's network is: its ``kind``, or a Q-network for version 1."""
    return document.get("kind", Q_NETWORK)


def action_scale_bias(document: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """An actor document's ``scale = (high - low) / 2`` and ``bias = (high + low) / 2``
    (float64): what maps ``tanh`` onto the action box."""
    low, high = (np.asarray(document["action"][key], np.float64) for key in ("low", "high"))
    return (high - low) / 2, (high + low) / 2


def safetensors_header(data: bytes) -> dict[str, Any]:
    """The JSON header of safetensors bytes (tensor index and ``__metadata__``), parsed with
    limits: a header larger than :data:`MAX_HEADER_BYTES` or nested deeper than
    :data:`MAX_JSON_DEPTH` is refused with ``ValueError`` before it can exhaust memory or the
    stack. Raises ``ValueError``, ``KeyError`` or ``TypeError`` on malformed bytes."""
    if len(data) < 8:
        raise ValueError(f"{len(data)} bytes, shorter than a safetensors header")
    header_len = int.from_bytes(data[:8], "little")
    if header_len > min(MAX_HEADER_BYTES, len(data) - 8):
        raise ValueError(f"header of {header_len} bytes: larger than the file or than "
                         f"{MAX_HEADER_BYTES} bytes")
    header = bounded_json(data[8:8 + header_len], "header")
    if not isinstance(header, dict):
        raise TypeError("the header is not a JSON object")
    return header


def metadata_document(data: bytes, key: str = METADATA_KEY, finite: bool = False) -> Any:
    """The JSON document stored under ``key`` in a safetensors header, read without loading
    any tensor, within :data:`MAX_DOCUMENT_BYTES` and :data:`MAX_JSON_DEPTH` (and, when
    ``finite``, without ``NaN``/``Infinity``); raises ``ValueError``, ``KeyError`` or
    ``TypeError`` on malformed bytes."""
    text = safetensors_header(data)["__metadata__"][key]
    if not isinstance(text, str):
        raise TypeError(f"metadata key {key!r} is not a string")
    if len(text) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"metadata document of {len(text)} characters, more than "
                         f"{MAX_DOCUMENT_BYTES}")
    return bounded_json(text, "metadata document", finite)


def read_document(data: bytes, source: str = "<bytes>") -> dict[str, Any]:
    """The JSON document of a policy file, checked for format and version."""
    try:
        document = metadata_document(data, finite=True)
    except (ValueError, KeyError, TypeError) as error:
        raise PolicyFileError(f"{source}: not a hindsight-rl policy file ({error})") from None
    if not isinstance(document, dict):
        raise PolicyFileError(f"{source}: metadata is not a JSON object")
    if document.get("format") != FORMAT:
        raise PolicyFileError(
            f"{source}: format is {document.get('format')!r}, expected {FORMAT!r}")
    version = document.get("format_version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise PolicyFileError(f"{source}: format_version is {version!r}, this reader "
                              f"supports {', '.join(map(str, READABLE_VERSIONS))}")
    _check_kind(document, version, source)
    _check_names_no_code(document, source)
    return document


def _check_kind(document: dict[str, Any], version: int, source: str) -> None:
    """Version 2 names its network's kind; version 1 has none (its files are Q-networks)."""
    if version == 1:
        if "kind" in document:
            raise PolicyFileError(f"{source}: format_version 1 has no kind (got "
                                  f"{document['kind']!r}); kind is defined from version 2")
        return
    if document.get("kind") not in KINDS:
        raise PolicyFileError(f"{source}: kind is {document.get('kind')!r}, expected one of "
                              f"{list(KINDS)}")


def _check_names_no_code(document: dict[str, Any], source: str) -> None:
    """A policy file is data: it may name a registered Gymnasium id, never code to import
    (an ``entry_point``, or a ``module:`` prefix, which ``gymnasium.make`` would import)."""
    env = document.get("env")
    if not isinstance(env, dict) or not isinstance(env.get("id"), str):
        raise PolicyFileError(f"{source}: metadata has no env.id string")
    if env.get("entry_point") is not None:
        raise PolicyFileError(
            f"{source}: names code to import (env.entry_point {env['entry_point']!r}); a "
            "policy file may only name a registered Gymnasium id. If you trust that code, "
            "register the environment yourself (play: --entry-point MODULE:CLASS)")
    if ":" in env["id"]:
        raise PolicyFileError(f"{source}: env.id {env['id']!r} names a module to import; a "
                              "policy file may only name a registered Gymnasium id")


@contextmanager
def _metadata_errors(source: str) -> Iterator[None]:
    """What malformed metadata can raise while it is interpreted becomes PolicyFileError."""
    try:
        yield
    except PolicyFileError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as error:
        raise PolicyFileError(f"{source}: metadata does not describe a network "
                              f"({type(error).__name__}: {error})") from None


def _checked_tensors(load: Callable[[bytes], dict[str, Any]], data: bytes,
                     document: dict[str, Any], source: str) -> dict[str, Any]:
    """The file's tensors, after checking they match the document and are finite."""
    with _metadata_errors(source):
        _check_layout(document, source)
        _check_dtypes(data, document, source)
    try:
        tensors = load(data)
    except SafetensorError as error:
        raise PolicyFileError(f"{source}: corrupted tensors ({error})") from None
    with _metadata_errors(source):
        _check_tensors(tensors, document, source)
        _check_names(document, source)
    return tensors


def _check_names(document: dict[str, Any], source: str) -> None:
    """Each layer's tensors carry its part's name, as the torch network rebuilds them."""
    for index, layer in enumerate(document["layers"]):
        part = _part_of(index, document)
        for key in _tensor_keys(layer):
            if not layer[key].startswith(f"{part}."):
                raise PolicyFileError(f"{source}: layer {index} is the {part}, but its {key} "
                                      f"is named {layer[key]!r}")


def _tensor_keys(layer: dict[str, Any]) -> tuple[str, ...]:
    """The keys of a layer's entry that name its tensors."""
    return GRU_TENSORS if layer.get("kind") == GRU else ("weight", "bias")


def _tensor_names(document: dict[str, Any]) -> list[str]:
    """Every tensor the document's layers name, in layer order."""
    return [layer[key] for layer in document["layers"] for key in _tensor_keys(layer)]


def _encoder_layers(document: dict[str, Any]) -> int:
    """How many layers the encoder has: its convolutions, then one linear layer; or one
    gru layer (never beside convolutions, :func:`_check_gru`)."""
    return 1 + sum(1 for layer in document["layers"] if layer.get("kind") == CONV2D)


def _first_linear(document: dict[str, Any]) -> int:
    """The index of the first linear layer: after the convolutions or the gru layer."""
    return sum(1 for layer in document["layers"] if layer.get("kind") in (CONV2D, GRU))


def _part_of(index: int, document: dict[str, Any]) -> str:
    last = len(document["layers"]) - 1
    return ("encoder" if index < _encoder_layers(document) else "head" if index == last
            else "trunk")


def _check_layout(document: dict[str, Any], source: str) -> None:
    """The network the format defines: layers in order encoder (its convolutions, then a
    linear layer), trunk..., head, each ``parts`` entry naming its layers, ReLU everywhere
    but a linear head, and the scalars the readers use typed and in range."""
    layers = document["layers"]
    if not isinstance(layers, list) or not all(isinstance(layer, dict) for layer in layers):
        layers = []
    if layers:
        _check_gru(document, source)
    encoder = _encoder_layers(document) if layers else 1
    if len(layers) < encoder + 2:
        raise PolicyFileError(f"{source}: layers must list the encoder, at least one trunk "
                              "layer and the head")
    last = len(layers) - 1
    expected_parts = {"encoder": list(range(encoder)), "trunk": list(range(encoder, last)),
                      "head": [last]}
    if document["parts"] != expected_parts:
        raise PolicyFileError(f"{source}: parts is {document['parts']!r}; for {len(layers)} "
                              f"layers the format defines {expected_parts}")
    shape = document["observation"]["shape"]
    if not (isinstance(shape, list) and len(shape) == 1 and type(shape[0]) is int
            and shape[0] >= 1):
        raise PolicyFileError(f"{source}: observation.shape is {shape!r}, expected [width]")
    _check_convolutions(document, encoder, source)
    for index, layer in enumerate(layers):
        if layer.get("kind") == GRU:
            continue
        part = _part_of(index, document)
        expected = HEAD_ACTIVATION if index == last else HIDDEN_ACTIVATION
        if layer["activation"] != expected:
            raise PolicyFileError(
                f"{source}: layer {index} ({part}) has activation {layer['activation']!r}; "
                f"the format defines {HIDDEN_ACTIVATION!r} for hidden layers and null for "
                "the head")
    if not set(document["frozen"]) <= set(PART_NAMES):
        raise PolicyFileError(f"{source}: frozen is {document['frozen']!r}; expected parts "
                              f"among {list(PART_NAMES)}")
    n_actions, gamma = document["n_actions"], document["gamma"]
    if policy_kind(document) == SQUASHED_GAUSSIAN:
        _check_actor(document, source)
    elif type(n_actions) is not int or n_actions < 1:
        raise PolicyFileError(f"{source}: n_actions is {n_actions!r}, expected an integer >= 1")
    if type(gamma) not in (int, float) or not 0 < gamma <= 1:
        raise PolicyFileError(f"{source}: gamma is {gamma!r}, expected a number in (0, 1]")
    if not isinstance(document["provenance"], dict):
        raise PolicyFileError(f"{source}: provenance is not a JSON object")
    if "acting" in document:
        _check_acting(document, source)


def _check_acting(document: dict[str, Any], source: str) -> None:
    """An ``acting`` entry is version 6's, a Q-network's, the one rule the format defines,
    with a positive finite temperature (the argmax is written as no entry)."""
    acting = document["acting"]
    if document["format_version"] < ACTING_VERSION or policy_kind(document) != Q_NETWORK:
        raise PolicyFileError(f"{source}: acting is defined from format_version "
                              f"{ACTING_VERSION}, for a {Q_NETWORK} only")
    if not isinstance(acting, dict) or acting.get("rule") != BOLTZMANN:
        raise PolicyFileError(f"{source}: acting is {acting!r}; the format defines "
                              f"{{'rule': {BOLTZMANN!r}, 'temperature': t > 0}}")
    temperature = acting.get("temperature")
    if type(temperature) not in (int, float) or not 0 < temperature < math.inf:
        raise PolicyFileError(f"{source}: acting.temperature is {temperature!r}, expected a "
                              "finite number > 0")


def _check_convolutions(document: dict[str, Any], encoder: int, source: str) -> None:
    """Convolutions come first, only in version 3, each with an integer stride, and read an
    ``observation.image`` (height, width, channels) whose pixels are the observation."""
    layers, version = document["layers"], document["format_version"]
    for index, layer in enumerate(layers):
        kind = layer.get("kind", "linear")
        if kind not in ("linear", CONV2D, GRU) or (kind == "linear" and "kind" in layer):
            raise PolicyFileError(f"{source}: layer {index} has kind {kind!r}; the format "
                                  f"defines {CONV2D!r} and {GRU!r} (a linear layer has no "
                                  "kind)")
        if kind == CONV2D and index >= encoder - 1:
            raise PolicyFileError(f"{source}: layer {index} is a convolution after the "
                                  "encoder's convolutions; they must come first")
        if kind == CONV2D and not (type(layer.get("stride")) is int and layer["stride"] >= 1):
            raise PolicyFileError(f"{source}: layer {index}'s stride is "
                                  f"{layer.get('stride')!r}, expected an integer >= 1")
    image = document["observation"].get("image")
    if encoder > 1 and version < 3:
        raise PolicyFileError(f"{source}: format_version {version} has no convolutions; "
                              "they are defined from version 3")
    if (encoder > 1) != (image is not None):
        raise PolicyFileError(f"{source}: observation.image is {image!r} with "
                              f"{encoder - 1} convolutions; convolutions read an image and "
                              "only they do")
    if image is None:
        return
    width = document["observation"]["shape"][0]
    vectors = version >= CONV_WITH_VECTOR_VERSION
    if not (isinstance(image, list) and len(image) == 3
            and all(type(n) is int and n >= 1 for n in image)
            and (math.prod(image) <= width if vectors else math.prod(image) == width)):
        bound = "at most" if vectors else "equal to"
        raise PolicyFileError(f"{source}: observation.image is {image!r}, expected [height, "
                              f"width, channels] whose product is {bound} observation.shape[0] "
                              f"({width})")
    if not vectors and document["goal"] is not None:
        raise PolicyFileError(f"{source}: format_version {version} has a goal beside an "
                              f"image; entries after the pixels are defined from version "
                              f"{CONV_WITH_VECTOR_VERSION}")


def _check_gru(document: dict[str, Any], source: str) -> None:
    """A gru layer, from version 4, is a Q-network's whole encoder: layer 0, no
    convolutions beside it, an integer ``hidden`` width >= 1 and no activation (its hidden
    state is the features)."""
    layers, version = document["layers"], document["format_version"]
    grus = [index for index, layer in enumerate(layers) if layer.get("kind") == GRU]
    if not grus:
        return
    if version < 4:
        raise PolicyFileError(f"{source}: format_version {version} has no gru layers; they "
                              "are defined from version 4")
    if grus != [0]:
        raise PolicyFileError(f"{source}: layer {grus[-1]} is a gru layer; the format "
                              "defines one, layer 0, the whole encoder")
    if any(layer.get("kind") == CONV2D for layer in layers):
        raise PolicyFileError(f"{source}: a gru encoder reads observation vectors; the "
                              "format defines no conv2d layers beside it")
    if policy_kind(document) != Q_NETWORK:
        raise PolicyFileError(f"{source}: a {policy_kind(document)} network has a gru "
                              "layer; the format defines gru encoders for Q-networks only")
    gru = layers[0]
    if not (type(gru.get("hidden")) is int and gru["hidden"] >= 1):
        raise PolicyFileError(f"{source}: layer 0's hidden is {gru.get('hidden')!r}, "
                              "expected an integer >= 1 (the gru's hidden width)")
    if "activation" in gru:
        raise PolicyFileError(f"{source}: layer 0 (gru) has activation "
                              f"{gru['activation']!r}; the format defines none for a gru "
                              "layer (its hidden state is the features)")


def _check_actor(document: dict[str, Any], source: str) -> None:
    """An actor's counterpart of the Q-network's ``n_actions`` check: no ``n_actions``, an
    action box of ``d >= 1`` finite entries with ``high > low``, and the squash and log-std
    clamp the format defines."""
    if document["n_actions"] is not None:
        raise PolicyFileError(f"{source}: n_actions is {document['n_actions']!r}; an actor's "
                              "actions are continuous, so it must be null")
    action = document["action"]
    shape = action["shape"]
    if not (isinstance(shape, list) and len(shape) == 1 and type(shape[0]) is int
            and shape[0] >= 1):
        raise PolicyFileError(f"{source}: action.shape is {shape!r}, expected [width]")
    for key in ("low", "high"):
        if not _finite_numbers(action[key], shape[0]):
            raise PolicyFileError(f"{source}: action.{key} must be {shape[0]} finite numbers, "
                                  "one per action entry")
    low, high = (np.asarray(action[key], np.float64) for key in ("low", "high"))
    if not (high > low).all():
        raise PolicyFileError(f"{source}: action.high must exceed action.low in every entry "
                              f"(low {action['low']}, high {action['high']})")
    if document["log_std_bounds"] != LOG_STD_BOUNDS:
        raise PolicyFileError(f"{source}: log_std_bounds is {document['log_std_bounds']!r}; "
                              f"the format defines {LOG_STD_BOUNDS}")
    if document["squash"] != SQUASH:
        raise PolicyFileError(f"{source}: squash is {document['squash']!r}; the format "
                              f"defines {SQUASH!r}")


def _finite_numbers(values: Any, width: int) -> bool:
    """``values`` is a list of ``width`` finite JSON numbers (booleans are not numbers)."""
    return (isinstance(values, list) and len(values) == width
            and all(type(v) in (int, float) for v in values)
            and bool(np.isfinite(np.asarray(values, np.float64)).all()))


def _check_dtypes(data: bytes, document: dict[str, Any], source: str) -> None:
    """Every tensor is float32 and named by a layer: read from the header, before any tensor
    is loaded (numpy cannot even hold bfloat16; torch would cast it silently)."""
    header = safetensors_header(data)
    named = _tensor_names(document)
    for name in named:
        if name not in header:
            raise PolicyFileError(f"{source}: tensor {name!r} named in metadata is missing")
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if name not in named:
            raise PolicyFileError(f"{source}: tensor {name!r} is not named by any layer")
        if entry["dtype"] != DTYPE:
            raise PolicyFileError(f"{source}: tensor {name!r} is {entry['dtype']}; a policy "
                                  f"file holds {DTYPE} (float32) tensors only")


def policy_from_bytes(data: bytes, source: str = "<bytes>") -> Policy:
    """Rebuild the torch network and its context from policy-file bytes."""
    document = read_document(data, source)
    tensors = _checked_tensors(load_torch_bytes, data, document, source)
    with _metadata_errors(source):
        return _policy_from(document, tensors)


def _policy_from(document: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Policy:
    network = _network_of(document, network_config_of(document, tensors))
    for prefix, layer in _file_layers(network):
        _load_layer(layer, prefix, tensors)
    goal = document["goal"]
    env = env_config_of(document)
    if goal is not None:
        definition = {key: value for key, value in goal.items()
                      if key in GoalConfig.model_fields}
        env = env.model_copy(update={"goal": from_mapping(GoalConfig, definition, "goal")})
    return Policy(network=network, env=env,
                  gamma=float(document["gamma"]), frozen=tuple(document["frozen"]),
                  provenance=document["provenance"],
                  acting_temperature=acting_temperature(document))


def _load_layer(layer: FileLayer, prefix: str, tensors: dict[str, torch.Tensor]) -> None:
    """Copy one layer's tensors into it (inverse of :func:`_layer_tensors`)."""
    if isinstance(layer, StackedGRU):
        layer.load_member(0, GRUWeights(*(tensors[f"{prefix}.{name}"] for name in GRU_TENSORS)))
        return
    weight, bias = tensors[f"{prefix}.weight"], tensors[f"{prefix}.bias"]
    with torch.no_grad():
        if isinstance(layer, StackedConv2d):
            layer.weight[0].copy_(weight)
            layer.bias[0].copy_(bias)
        else:
            layer.weight[0].copy_(weight.T)
            layer.bias[0, 0].copy_(bias)


def network_config_of(document: dict[str, Any], tensors: dict[str, Any]) -> NetworkConfig:
    """The network's shape as config, read from its layers' tensors: the linear layers'
    widths, a ``gru`` encoder's hidden width (the features') or a ``cnn`` encoder's
    channels, kernels and strides."""
    layers = document["layers"]
    if layers[0].get("kind") == GRU:
        hidden = int(tensors[layers[0]["weight_hh"]].shape[1])
        widths = tuple(int(tensors[layer["weight"]].shape[0]) for layer in layers[1:-1])
        return NetworkConfig(hidden_sizes=(hidden, *widths), encoder="gru")
    convs = [layer for layer in layers if layer.get("kind") == CONV2D]
    widths = tuple(int(tensors[layer["weight"]].shape[0]) for layer in layers[len(convs):-1])
    if not convs:
        return NetworkConfig(hidden_sizes=widths)
    conv = ConvConfig(channels=tuple(int(tensors[c["weight"]].shape[0]) for c in convs),
                      kernels=tuple(int(tensors[c["weight"]].shape[2]) for c in convs),
                      strides=tuple(int(c["stride"]) for c in convs))
    return NetworkConfig(hidden_sizes=widths, encoder="cnn", conv=conv)


def _network_of(document: dict[str, Any],
                config: NetworkConfig) -> QNetwork | GaussianActor:
    """The document's kind of network, its weights still to be loaded."""
    shift, scale = (values.astype(np.float32) for values in input_normalisation(document))
    if policy_kind(document) == Q_NETWORK:
        return QNetwork(len(shift), int(document["n_actions"]), config, shift, scale,
                        image_shape=document["observation"].get("image"))
    action = document["action"]
    actor = GaussianActor(len(shift), np.asarray(action["low"], np.float64),
                          np.asarray(action["high"], np.float64), config, shift, scale)
    with torch.no_grad():  # the float64 derivation: exactly the saved actor's float32 buffers
        for buffer, values in zip((actor.action_scale, actor.action_bias),
                                  action_scale_bias(document), strict=True):
            buffer.copy_(torch.from_numpy(values.astype(np.float32)).view(1, 1, -1))
    return actor


def input_normalisation(document: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Shift and scale of the network's whole input: the observation's, then the goal's."""
    parts = [document["observation"]] + ([document["goal"]] if document["goal"] else [])
    return tuple(np.concatenate([np.asarray(part[key], np.float64) for part in parts])
                 for key in ("shift", "scale"))


def env_config_of(document: dict[str, Any], entry_point: str | None = None) -> EnvConfig:
    """The environment a policy file was trained on, as config (the document's ``env``),
    without its goal: observations as the task gives them. ``entry_point`` is the caller's
    own (never the file's): the code of a custom environment the file's id names."""
    settings = {key: value for key, value in document["env"].items()
                if key in EnvConfig.model_fields and key != "entry_point"}
    return from_mapping(EnvConfig, {**settings, "entry_point": entry_point}, "env")


def _check_tensors(tensors: dict[str, Any], document: dict[str, Any], source: str) -> None:
    _check_goal(document, source)
    in_width = int(document["observation"]["shape"][0]) + _goal_width(document)
    for name in _tensor_names(document):
        if name not in tensors:
            raise PolicyFileError(f"{source}: tensor {name!r} named in metadata is missing")
    layers = document["layers"]
    if _encoder_layers(document) > 1:
        in_width = _check_conv_tensors(tensors, document, in_width, source)
    elif layers[0].get("kind") == GRU:
        in_width = _check_gru_tensors(tensors, layers[0], in_width, source)
    for layer in layers[_first_linear(document):]:
        weight, bias = tensors[layer["weight"]], tensors[layer["bias"]]
        fits = weight.ndim == 2 and weight.shape[1] == in_width
        if not fits or tuple(bias.shape) != (weight.shape[0],):
            raise PolicyFileError(
                f"{source}: {layer['weight']} has shape {tuple(weight.shape)} with bias "
                f"{tuple(bias.shape)}; expected (out_features, {in_width}) and (out_features,)")
        if not (np.isfinite(np.asarray(weight)).all() and np.isfinite(np.asarray(bias)).all()):
            raise PolicyFileError(f"{source}: {layer['weight']} or its bias is not finite")
        in_width = int(weight.shape[0])
    _check_head_width(in_width, document, source)
    observation = document["observation"]
    for key in ("shift", "scale"):
        values = np.asarray(observation[key], np.float64)
        if values.shape != (int(observation["shape"][0]),) or not np.isfinite(values).all():
            raise PolicyFileError(f"{source}: observation.{key} must be "
                                  f"{observation['shape'][0]} finite numbers")


def _check_conv_tensors(tensors: dict[str, Any], document: dict[str, Any], in_width: int,
                        source: str) -> int:
    """Each convolution's weight is ``(out, in, k, k)`` with ``in`` the channels it reads and
    a kernel that fits the image left; returns the width the encoder's linear layer reads:
    the flattened convolutions plus the input's ``in_width`` entries after the pixels."""
    height, width, channels = document["observation"]["image"]
    vectors = in_width - height * width * channels
    for layer in document["layers"][:_encoder_layers(document) - 1]:
        weight, bias = tensors[layer["weight"]], tensors[layer["bias"]]
        kernel, stride = (int(weight.shape[-1]) if weight.ndim == 4 else 0), layer["stride"]
        fits = (weight.ndim == 4 and weight.shape[1] == channels
                and weight.shape[2] == kernel and 1 <= kernel <= min(height, width))
        if not fits or tuple(bias.shape) != (weight.shape[0],):
            raise PolicyFileError(
                f"{source}: {layer['weight']} has shape {tuple(weight.shape)} with bias "
                f"{tuple(bias.shape)}; expected (out_channels, {channels}, k, k) with k at "
                f"most {min(height, width)}, and (out_channels,)")
        if not (np.isfinite(np.asarray(weight)).all() and np.isfinite(np.asarray(bias)).all()):
            raise PolicyFileError(f"{source}: {layer['weight']} or its bias is not finite")
        channels = int(weight.shape[0])
        height, width = convolved(height, width, kernel, stride)
    return channels * height * width + vectors


def _check_gru_tensors(tensors: dict[str, Any], layer: dict[str, Any], in_width: int,
                       source: str) -> int:
    """A gru layer's tensors are ``nn.GRUCell``'s: ``(3·hidden, in)`` with ``in`` the
    observation's width (and the goal's), ``(3·hidden, hidden)`` and two ``(3·hidden,)``
    biases, all finite; returns ``hidden``, the width of the features."""
    hidden = layer["hidden"]
    expected = {"weight_ih": (3 * hidden, in_width), "weight_hh": (3 * hidden, hidden),
                "bias_ih": (3 * hidden,), "bias_hh": (3 * hidden,)}
    for key, shape in expected.items():
        tensor = tensors[layer[key]]
        if tuple(tensor.shape) != shape:
            raise PolicyFileError(
                f"{source}: {layer[key]} has shape {tuple(tensor.shape)}; expected {shape}: "
                f"a gru of hidden {hidden} over {in_width}-entry inputs, nn.GRUCell's layout")
        if not np.isfinite(np.asarray(tensor)).all():
            raise PolicyFileError(f"{source}: {layer[key]} is not finite")
    return hidden


def _check_head_width(width: int, document: dict[str, Any], source: str) -> None:
    """A Q-network's head gives one value per action; an actor's a mean then a log-std per
    action entry."""
    if policy_kind(document) == Q_NETWORK:
        if width != int(document["n_actions"]):
            raise PolicyFileError(f"{source}: head gives {width} values, metadata says "
                                  f"n_actions={document['n_actions']}")
        return
    action_dim = int(document["action"]["shape"][0])
    if width != 2 * action_dim:
        raise PolicyFileError(f"{source}: head gives {width} values; an actor of "
                              f"{action_dim}-entry actions gives {2 * action_dim} (a mean "
                              "and a log-std per entry)")


def _goal_width(document: dict[str, Any]) -> int:
    return 0 if document["goal"] is None else len(document["goal"]["desired"])


def _check_goal(document: dict[str, Any], source: str) -> None:
    goal = document["goal"]
    if goal is None:
        return
    width = len(goal["desired"])
    for key in ("desired", "shift", "scale"):
        values = np.asarray(goal[key], np.float64)
        if width == 0 or values.shape != (width,) or not np.isfinite(values).all():
            raise PolicyFileError(f"{source}: goal.{key} must be {width or 'one or more'} "
                                  "finite numbers, one per goal entry")


def check_fits_env(document: dict[str, Any], env_id: str, info: Any, source: str) -> None:
    """The network reads the environment's observations and acts in its action space:
    otherwise playing it fails inside numpy, never takes some actions at all (fewer Q-values
    than actions), or steps with actions outside the box it was trained on. ``info`` is the
    env's :class:`~hindsight_rl.core.envs.EnvInfo` (``action_low``/``action_high`` set for
    continuous actions)."""
    low = getattr(info, "action_low", None)
    actor = policy_kind(document) == SQUASHED_GAUSSIAN
    if actor and low is None:
        raise PolicyFileError(f"{source}: the network is a squashed Gaussian actor, which "
                              f"plays continuous actions, but {env_id} has {info.n_actions} "
                              "discrete actions")
    if not actor and low is not None:
        raise PolicyFileError(f"{source}: the network is a Q-network, which plays discrete "
                              f"actions, but {env_id}'s actions are continuous "
                              f"({len(low)}-entry vectors)")
    if actor:
        _check_actor_fits(document, env_id, info, source)
        return
    width, actions = int(document["observation"]["shape"][0]), int(document["n_actions"])
    if (width, actions) != (info.obs_dim, info.n_actions):
        raise PolicyFileError(
            f"{source}: the network takes {width}-entry observations and gives {actions} "
            f"Q-values, but {env_id} gives {info.obs_dim}-entry observations and has "
            f"{info.n_actions} actions")


def _check_actor_fits(document: dict[str, Any], env_id: str, info: Any, source: str) -> None:
    """Same observation width, same action width and the same action box (to float32
    rounding: the env's bounds are float32, the file's their float64 ``bias ∓ scale``)."""
    width, action = int(document["observation"]["shape"][0]), document["action"]
    low, high = (np.asarray(action[key], np.float64) for key in ("low", "high"))
    env_low, env_high = (np.asarray(b, np.float64) for b in (info.action_low, info.action_high))
    fits = (width == info.obs_dim and low.shape == env_low.shape
            and np.allclose(low, env_low, rtol=1e-6, atol=1e-6)
            and np.allclose(high, env_high, rtol=1e-6, atol=1e-6))
    if not fits:
        raise PolicyFileError(
            f"{source}: the actor takes {width}-entry observations and gives "
            f"{len(low)}-entry actions in [{_bounds(low)}, {_bounds(high)}], but {env_id} "
            f"gives {info.obs_dim}-entry observations and takes {len(env_low)}-entry actions "
            f"in [{_bounds(env_low)}, {_bounds(env_high)}]")


def _bounds(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


class NumpyPolicy:
    """Play from a policy file with numpy alone, exactly as DESIGN.md spells it out:
    observations as the environment gives them, the file's desired goal appended; a
    Q-network's argmax (or its draw from ``softmax(Q / temperature)`` where the file's
    ``acting`` says so), or an actor's ``tanh(mean) · scale + bias``.

    A ``gru`` file's network remembers its episode, so its actions are not a function of one
    observation: :meth:`player` is how every caller plays any file (a gru file's through a
    :class:`RecurrentPlayer`); :meth:`q_values`, :meth:`actions` and :meth:`act` are for
    files without memory and refuse a gru one."""

    def __init__(self, data: bytes, source: str = "<bytes>") -> None:
        self.document = read_document(data, source)
        self.source = source
        tensors = _checked_tensors(load_numpy_bytes, data, self.document, source)
        self.kind = policy_kind(self.document)
        self.temperature = acting_temperature(self.document)
        goal = self.document["goal"]
        self.desired = np.asarray([] if goal is None else goal["desired"], np.float64)
        self.shift, self.scale = input_normalisation(self.document)
        layers = self.document["layers"]
        self.image_shape = self.document["observation"].get("image")
        self.convs = [(tensors[layer["weight"]].astype(np.float64)[None],
                       tensors[layer["bias"]].astype(np.float64)[None], layer["stride"])
                      for layer in layers if layer.get("kind") == CONV2D]
        # A gru layer's weights in nn.GRUCell's layout, as numpy_gru_step takes them.
        self.gru = tuple(tensors[layers[0][name]].astype(np.float64) for name in GRU_TENSORS
                         ) if layers[0].get("kind") == GRU else None
        self.layers = [(tensors[layer["weight"]].astype(np.float64),
                        tensors[layer["bias"]].astype(np.float64), layer["activation"])
                       for layer in layers[_first_linear(self.document):]]
        if self.kind == SQUASHED_GAUSSIAN:
            self.action_scale, self.action_bias = action_scale_bias(self.document)

    @property
    def recurrent(self) -> bool:
        """Whether the network remembers its episode (a gru encoder)."""
        return self.gru is not None

    def player(self, seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
        """The file's policy, as evaluation, ``play`` and the reports play it: an actor's
        :meth:`actions`; a Q-network's argmax, or its Boltzmann draws (from a generator
        seeded with ``seed``) where the file has a temperature. A gru network's is a new
        :class:`RecurrentPlayer`, which :func:`~hindsight_rl.core.evaluation.remembers`
        (``start(episodes)``, then each call is the next step of all of them)."""
        if self.kind != Q_NETWORK:
            return self.actions
        choose = boltzmann_choice(self.temperature, np.random.default_rng(seed))
        return RecurrentPlayer(self, choose) if self.recurrent else acting_on(
            self.q_values, choose)

    def _inputs(self, obs: np.ndarray) -> np.ndarray:
        """The network's inputs (B, width): observations with the desired goal appended."""
        obs = np.asarray(obs, np.float64)
        goals = np.broadcast_to(self.desired, (len(obs), len(self.desired)))
        return np.concatenate([obs, goals], axis=1)

    def _head(self, obs: np.ndarray) -> np.ndarray:
        """The head's outputs for a batch of observations (B, obs_dim)."""
        if self.recurrent:
            raise PolicyFileError(f"{self.source}: a gru policy remembers its episode, so "
                                  "one observation does not decide its action; play it "
                                  "with player() (start(episodes), then one call per step)")
        return numpy_forward(self._inputs(obs), self.shift, self.scale, self.layers,
                             self.image_shape, self.convs)

    def step(self, obs: np.ndarray, hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A gru network's Q-values (B, n_actions) for the next observations of ``B``
        episodes (B, obs_dim) from their hidden states (B, hidden), and the new hidden
        states: the file's arithmetic, with the state kept by the caller."""
        x = (self._inputs(obs) - self.shift) * self.scale
        hidden = numpy_gru_step(x, hidden, *self.gru)
        return numpy_layers(hidden, self.layers), hidden

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q-values for a batch of observations (B, obs_dim); a Q-network's only."""
        if self.kind != Q_NETWORK:
            raise PolicyFileError(f"{self.source}: a {self.kind} policy has no Q-values; "
                                  "play it with actions()")
        return self._head(obs)

    def actions(self, obs: np.ndarray) -> np.ndarray:
        """Greedy actions for a batch of observations (B, obs_dim): a Q-network's argmax
        indices (B,), or an actor's deterministic actions (B, action_dim) as float32."""
        if self.kind == Q_NETWORK:
            return self.q_values(obs).argmax(axis=1)
        mean = self._head(obs)[:, :len(self.action_scale)]
        return (np.tanh(mean) * self.action_scale + self.action_bias).astype(np.float32)

    def act(self, obs: np.ndarray) -> int | np.ndarray:
        """One observation's action: an int for a Q-network, a float32 (action_dim,) array
        for an actor. Not for a gru file, whose action depends on the episode so far."""
        action = self.actions(np.asarray(obs)[None])[0]
        return int(action) if self.kind == Q_NETWORK else action


class RecurrentPlayer:
    """A gru file's play of ``B`` episodes side by side, with numpy alone: :meth:`start`
    them (each from the zero state), then each call takes every episode's next
    observation, rows in the same order, and gives their actions (by ``choose``)."""

    def __init__(self, policy: NumpyPolicy, choose: Choice = argmax) -> None:
        self.policy, self.choose = policy, choose
        self.hidden: np.ndarray | None = None

    def start(self, episodes: int) -> None:
        """Begin ``episodes`` new episodes, forgetting any before."""
        self.hidden = np.zeros((episodes, self.policy.gru[1].shape[1]))

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q-values (B, n_actions) of the started episodes' next observations (B, obs_dim)."""
        obs = np.asarray(obs)
        if self.hidden is None or len(obs) != len(self.hidden):
            started = "none" if self.hidden is None else len(self.hidden)
            raise HindsightRLError(f"{self.policy.source}: {len(obs)} observations for the "
                                   f"episodes started ({started}); call start(episodes), then "
                                   "give every episode's observation at each step")
        q_values, self.hidden = self.policy.step(obs, self.hidden)
        return q_values

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """The episodes' actions (B,), chosen from each row's Q-values."""
        return self.choose(self.q_values(obs))
