"""The Q-network: three named parts, so that transfer and freezing speak of the same things,
each holding the weights of ``members`` networks of one shape stacked along a leading axis.

``encoder`` maps a (normalised) observation to features, ``trunk`` maps features to features
and is what carries over between tasks, ``head`` gives one Q-value per action. A policy is
a network of one member; the training seeds of an arm are the members of one network, so
every layer runs as one batched product for all of them and autograd differentiates them
together (the "vectorised linear" of CORL's SAC-N). Members never mix: member ``k``'s
outputs depend on member ``k``'s weights and inputs alone, and so do its gradients.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from hindsight_rl.core.config import PART_NAMES, NetworkConfig
from hindsight_rl.core.errors import HindsightRLError


class StackedLinear(nn.Module):
    """``members`` linear layers of one shape: ``y_k = x_k W_k + b_k`` for every member ``k``
    as one batched product. Weights are stored ``(members, in, out)``, so that the product
    and its weight gradient need no transposed copies; each member's is initialised exactly
    as ``nn.Linear`` initialises its own ``(out, in)`` weight (the same random draws)."""

    def __init__(self, members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(members, 1, out_features))
        bound = 1 / math.sqrt(in_features)
        with torch.no_grad():
            for k in range(members):
                weight = torch.empty(out_features, in_features)
                nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
                self.weight[k].copy_(weight.T)
                nn.init.uniform_(self.bias[k], -bound, bound)

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(members, batch, in)`` → ``(members, batch, out)``."""
        return torch.baddbmm(self.bias, x, self.weight)


class MLPEncoder(nn.Sequential):
    """Observation → features: ``relu(W ((obs − shift) · scale) + b)``. The normalisation
    (one per member) belongs to the encoder: its weights only make sense with it."""

    def __init__(self, members: int, obs_dim: int, features: int) -> None:
        super().__init__(StackedLinear(members, obs_dim, features), nn.ReLU(inplace=True))
        self.register_buffer("shift", torch.zeros(members, 1, obs_dim))
        self.register_buffer("scale", torch.ones(members, 1, obs_dim))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return super().forward((obs - self.shift) * self.scale)


def stacked_trunk(members: int, sizes: Sequence[int]) -> nn.Sequential:
    """Trunk layers ``sizes[i] → sizes[i+1]``, each followed by a ReLU."""
    layers: list[nn.Module] = []
    for width_in, width_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [StackedLinear(members, width_in, width_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def set_normalisation(encoder: MLPEncoder, shift: np.ndarray | None,
                      scale: np.ndarray | None) -> None:
    """The encoder's input shift and scale (every member's), where given."""
    with torch.no_grad():
        if shift is not None:
            encoder.shift.copy_(torch.as_tensor(shift, dtype=torch.float32))
        if scale is not None:
            encoder.scale.copy_(torch.as_tensor(scale, dtype=torch.float32))


def load_stacked(stacked: nn.Module, networks: Sequence[nn.Module]) -> None:
    """Load ``networks`` (each of one member) into ``stacked`` as its members, in order."""
    states = [n.state_dict() for n in networks]
    shapes = {tuple((k, tuple(v.shape)) for k, v in state.items()) for state in states}
    if len(shapes) != 1:
        raise ValueError(f"networks to stack must have one shape, got {sorted(shapes)}")
    stacked.load_state_dict({key: torch.cat([state[key] for state in states])
                             for key in states[0]})


class StackedNetwork(nn.Module):
    """What every network here shares (the Q-network, SAC's actor and critic): named parts
    (``PARTS``, in forward order) with an ``encoder`` and a ``head``, their linear layers,
    and ``members`` stacked along the leading axis of every weight."""

    PARTS: tuple[str, ...] = PART_NAMES

    @property
    def members(self) -> int:
        return int(self.head.weight.shape[0])

    @property
    def obs_dim(self) -> int:
        return int(self.encoder.shift.shape[2])

    def part(self, name: str) -> nn.Module:
        if name not in self.PARTS:
            raise KeyError(f"unknown part {name!r}; parts are {self.PARTS}")
        return getattr(self, name)

    def layers(self) -> list[tuple[str, StackedLinear]]:
        """Every linear layer in forward order with its state-dict prefix (``trunk.0``...)."""
        return [(name, module) for name, module in self.named_modules()
                if isinstance(module, StackedLinear)]

    def part_parameters(self, parts: Sequence[str]) -> list[nn.Parameter]:
        """The parameters of the named parts, in forward order."""
        return [p for name in self.PARTS if name in parts for p in self.part(name).parameters()]

    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        """Member ``k``'s state dict as a one-member network's, copied."""
        return {key: value[k:k + 1].clone() for key, value in self.state_dict().items()}


class QNetwork(StackedNetwork):
    """``head(trunk(encoder(obs)))`` for ``members`` networks at once: observations
    ``(members, batch, obs_dim)`` → Q-values ``(members, batch, n_actions)``."""

    def __init__(self, obs_dim: int, n_actions: int, config: NetworkConfig,
                 shift: np.ndarray | None = None, scale: np.ndarray | None = None,
                 members: int = 1) -> None:
        super().__init__()
        sizes = config.hidden_sizes
        self.encoder = MLPEncoder(members, obs_dim, sizes[0])
        self.trunk = stacked_trunk(members, sizes)
        self.head = StackedLinear(members, sizes[-1], n_actions)
        set_normalisation(self.encoder, shift, scale)
        self.config = config
        self._layers = [layer for _, layer in self.layers()]

    @property
    def n_actions(self) -> int:
        return self.head.out_features

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``head(trunk(encoder(obs)))``, with the layers' parameters used directly: calling
        each submodule would add nn.Module's call machinery to every layer of the three
        passes an update makes. The same arithmetic."""
        x = (obs - self.encoder.shift) * self.encoder.scale
        for layer in self._layers[:-1]:
            x = torch.baddbmm(layer.bias, x, layer.weight).relu_()
        head = self._layers[-1]
        return torch.baddbmm(head.bias, x, head.weight)

    @classmethod
    def stack(cls, networks: Sequence[QNetwork]) -> QNetwork:
        """One network whose member ``k`` is a copy of ``networks[k]`` (each of one member)."""
        first = networks[0]
        stacked = cls(first.obs_dim, first.n_actions, first.config, members=len(networks))
        load_stacked(stacked, networks)
        return stacked

    def member(self, k: int) -> QNetwork:
        """A network of one member: a copy of member ``k``."""
        network = QNetwork(self.obs_dim, self.n_actions, self.config)
        network.load_state_dict(self.member_state(k))
        return network

    def numpy_forward(self) -> NumpyStack:
        """Q-values in numpy on views of the current weights (see :class:`NumpyStack`)."""
        return NumpyStack(self)


class NumpyStack:
    """Q-values of observations ``(members, batch, obs_dim)`` computed in numpy on views of a
    network's parameters, which share their memory and so always hold the current weights.
    Acting asks for one observation per member every env step, where torch's per-call
    overhead would be several times the arithmetic."""

    def __init__(self, network: QNetwork) -> None:
        self.shift = network.encoder.shift.numpy()
        self.scale = network.encoder.scale.numpy()
        self.layers = [(layer.weight.detach().numpy(), layer.bias.detach().numpy())
                       for _, layer in network.layers()]

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        x = (np.asarray(obs, np.float32) - self.shift) * self.scale
        for i, (weight, bias) in enumerate(self.layers):
            x = np.matmul(x, weight) + bias
            if i < len(self.layers) - 1:
                np.maximum(x, 0.0, out=x)
        return x

    def member(self, k: int) -> NumpyStack:
        """Member ``k`` alone (still views of the network's current weights)."""
        view = object.__new__(NumpyStack)
        view.shift, view.scale = self.shift[k:k + 1], self.scale[k:k + 1]
        view.layers = [(weight[k:k + 1], bias[k:k + 1]) for weight, bias in self.layers]
        return view

    def q_function(self, k: int = 0) -> Callable[[np.ndarray], np.ndarray]:
        """Member ``k``'s Q-values of a batch of observations ``(batch, obs_dim)``."""
        member = self.member(k)
        return lambda obs: member(np.asarray(obs)[None])[0]


NumpyLayer = tuple[np.ndarray, np.ndarray, str | None]
"""``(weight (out, in), bias, activation)`` of one linear layer; activation ``relu`` or None."""


def numpy_forward(obs: np.ndarray, shift: np.ndarray, scale: np.ndarray,
                  layers: list[NumpyLayer]) -> np.ndarray:
    """One network's forward pass in numpy alone, from a policy file's layer list: how a
    policy file is played without torch."""
    x = (obs - shift) * scale
    for weight, bias, activation in layers:
        x = x @ weight.T + bias
        if activation == "relu":
            x = np.maximum(x, 0.0)
    return x


def observation_normaliser(low: np.ndarray, high: np.ndarray,
                           observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shift and scale mapping observations to about [-1, 1].

    Bounded dimensions use the space's bounds (exact and data-independent); unbounded ones
    (CartPole's velocities) use the mean and standard deviation of ``observations``.
    """
    low = np.asarray(low, np.float64)
    high = np.asarray(high, np.float64)
    bounded = np.isfinite(low) & np.isfinite(high) & (high - low < 1e6)
    mean = observations.mean(axis=0) if len(observations) else np.zeros_like(low)
    std = observations.std(axis=0) if len(observations) else np.ones_like(low)
    with np.errstate(invalid="ignore", over="ignore"):  # inf bounds are masked out below
        shift = np.where(bounded, (low + high) / 2, mean)
        half_range = np.where(bounded, (high - low) / 2, np.maximum(std, 1e-3) * 2)
    return shift.astype(np.float32), (1.0 / half_range).astype(np.float32)


class TransferError(HindsightRLError, ValueError):
    """A pretrained network cannot be carried over to the target network."""


def transfer_parts(source: QNetwork, target: QNetwork) -> list[str]:
    """Copy every part whose shapes match from ``source`` into ``target`` (the encoder with
    its input normalisation); return their names.

    The trunk must always fit: it is what transfer means here.
    """
    copied = []
    for name in PART_NAMES:
        src, dst = source.part(name).state_dict(), target.part(name).state_dict()
        if src.keys() == dst.keys() and all(src[k].shape == dst[k].shape for k in dst):
            target.part(name).load_state_dict(src)
            copied.append(name)
        elif name == "trunk":
            raise TransferError(
                "pretrained trunk does not fit the target network: "
                f"{ {k: tuple(v.shape) for k, v in src.items()} } vs "
                f"{ {k: tuple(v.shape) for k, v in dst.items()} }; use the same hidden_sizes")
    return copied
