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

from hindsight_rl.core.config import PART_NAMES, ConvConfig, NetworkConfig
from hindsight_rl.core.errors import HindsightRLError
from hindsight_rl.core.recurrent import StackedGRU, numpy_gru_step


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


class StackedConv2d(nn.Module):
    """``members`` 2-d convolutions of one shape, run as one grouped convolution (group ``k``
    is member ``k``'s channels). Weights are stored ``(members, out, in, k, k)`` and biases
    ``(members, out)`` so that every parameter's leading axis is the member, as everywhere
    else; each member's is initialised exactly as ``nn.Conv2d`` initialises its own."""

    def __init__(self, members: int, in_channels: int, out_channels: int, kernel: int,
                 stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.weight = nn.Parameter(torch.empty(members, out_channels, in_channels, kernel,
                                               kernel))
        self.bias = nn.Parameter(torch.empty(members, out_channels))
        bound = 1 / math.sqrt(in_channels * kernel * kernel)
        with torch.no_grad():
            for k in range(members):
                nn.init.kaiming_uniform_(self.weight[k], a=math.sqrt(5))
                nn.init.uniform_(self.bias[k], -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(batch, members · in, h, w)`` → ``(batch, members · out, h', w')``."""
        members = self.weight.shape[0]
        return nn.functional.conv2d(x, self.weight.flatten(0, 1), self.bias.flatten(),
                                    stride=self.stride, groups=members)


def convolved(height: int, width: int, kernel: int, stride: int) -> tuple[int, int]:
    """Height and width after one convolution without padding."""
    return (height - kernel) // stride + 1, (width - kernel) // stride + 1


def conv_output_shape(image_shape: Sequence[int], conv: ConvConfig) -> tuple[int, int, int]:
    """Channels, height and width after ``conv``'s layers on an image of ``image_shape``
    (height, width, channels); a clear error when the image is too small for them."""
    height, width, _ = image_shape
    for kernel, stride in zip(conv.kernels, conv.strides, strict=True):
        height, width = convolved(height, width, kernel, stride)
        if height < 1 or width < 1:
            raise HindsightRLError(f"network.conv: a {image_shape[0]}×{image_shape[1]} image "
                                   f"is too small for kernels {list(conv.kernels)} with "
                                   f"strides {list(conv.strides)}")
    return conv.channels[-1], height, width


class ConvEncoder(nn.Module):
    """Image observation → features: the flat row of pixels (height, width, channels, as
    the environment gives them) normalised, read as channels-first, convolutions each
    followed by a ReLU, flattened (channels, height, width), then ``relu(W x + b)`` to the
    features' width, so the trunk sees what an MLP encoder would give it.

    Entries after the pixels (the agent's position, a desired goal: what a view cannot
    show) join the flattened convolutions before the linear layer, as SB3's
    ``CombinedExtractor`` joins a dict observation's vectors to its image's features."""

    def __init__(self, members: int, obs_dim: int, image_shape: Sequence[int],
                 conv: ConvConfig, features: int) -> None:
        super().__init__()
        self.image_shape = tuple(int(n) for n in image_shape)
        self.pixels = math.prod(self.image_shape)
        self.register_buffer("shift", torch.zeros(members, 1, obs_dim))
        self.register_buffer("scale", torch.ones(members, 1, obs_dim))
        channels = (self.image_shape[2], *conv.channels)
        self.convs = nn.ModuleList(
            StackedConv2d(members, c_in, c_out, kernel, stride)
            for c_in, c_out, kernel, stride in zip(channels[:-1], channels[1:], conv.kernels,
                                                   conv.strides, strict=True))
        convolved_width = math.prod(conv_output_shape(image_shape, conv))
        self.linear = StackedLinear(members, convolved_width + obs_dim - self.pixels,
                                    features)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        members, batch, _ = obs.shape
        height, width, channels = self.image_shape
        x = (obs - self.shift) * self.scale
        image = x[..., :self.pixels].reshape(members, batch, height, width, channels)
        image = image.permute(1, 0, 4, 2, 3).reshape(batch, members * channels, height, width)
        for conv in self.convs:
            image = conv(image).relu_()
        image = image.reshape(batch, members, -1).transpose(0, 1)
        if x.shape[-1] > self.pixels:
            image = torch.cat([image, x[..., self.pixels:]], dim=-1)
        return self.linear(image).relu_()


class GRUEncoder(nn.Module):
    """Observation sequence → features: each normalised observation into a GRU whose hidden
    state, the memory of the episode so far, is the features (``hidden_sizes[0]`` wide)."""

    def __init__(self, members: int, obs_dim: int, features: int) -> None:
        super().__init__()
        self.register_buffer("shift", torch.zeros(members, 1, obs_dim))
        self.register_buffer("scale", torch.ones(members, 1, obs_dim))
        self.gru = StackedGRU(members, obs_dim, features)

    def forward(self, obs: torch.Tensor, h0: torch.Tensor | None = None,
                reset: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs`` ``(members, batch, T, obs_dim)`` → every step's features ``(members,
        batch, T, features)`` and the last hidden state (see :meth:`StackedGRU.forward`)."""
        return self.gru((obs - self.shift[:, :, None]) * self.scale[:, :, None], h0, reset)


Encoder = MLPEncoder | ConvEncoder | GRUEncoder


def make_encoder(members: int, obs_dim: int, config: NetworkConfig,
                 image_shape: Sequence[int] | None) -> Encoder:
    """The configured encoder type for observations of ``obs_dim`` entries."""
    if config.encoder == "mlp":
        return MLPEncoder(members, obs_dim, config.hidden_sizes[0])
    if config.encoder == "gru":
        return GRUEncoder(members, obs_dim, config.hidden_sizes[0])
    if image_shape is None or math.prod(image_shape) > obs_dim:
        raise HindsightRLError("network.encoder: cnn reads image observations (height × "
                               "width × channels); this task's observation is a "
                               f"{obs_dim}-entry vector")
    return ConvEncoder(members, obs_dim, image_shape, config.conv, config.hidden_sizes[0])


def stacked_trunk(members: int, sizes: Sequence[int]) -> nn.Sequential:
    """Trunk layers ``sizes[i] → sizes[i+1]``, each followed by a ReLU."""
    layers: list[nn.Module] = []
    for width_in, width_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [StackedLinear(members, width_in, width_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def set_normalisation(encoder: Encoder, shift: np.ndarray | None,
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

    def layers(self) -> list[tuple[str, StackedLinear | StackedConv2d]]:
        """Every convolution and linear layer in forward order with its state-dict prefix
        (``encoder.convs.0``, ``trunk.0``...)."""
        return [(name, module) for name, module in self.named_modules()
                if isinstance(module, StackedLinear | StackedConv2d)]

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        """The image a ``cnn`` encoder reads (height, width, channels); None for ``mlp``."""
        return getattr(self.encoder, "image_shape", None)

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
                 members: int = 1, image_shape: Sequence[int] | None = None) -> None:
        super().__init__()
        sizes = config.hidden_sizes
        self.encoder = make_encoder(members, obs_dim, config, image_shape)
        self.trunk = stacked_trunk(members, sizes)
        self.head = StackedLinear(members, sizes[-1], n_actions)
        set_normalisation(self.encoder, shift, scale)
        self.config = config
        self._layers = [layer for _, layer in self.layers()]

    @property
    def n_actions(self) -> int:
        return self.head.out_features

    @property
    def recurrent(self) -> bool:
        """Whether the network reads episodes (a ``gru`` encoder) rather than observations."""
        return isinstance(self.encoder, GRUEncoder)

    def sequence(self, obs: torch.Tensor, h0: torch.Tensor | None = None,
                 reset: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A recurrent network's Q-values of observation sequences ``(members, batch, T,
        obs_dim)`` → ``(members, batch, T, n_actions)``, and the last hidden state; ``h0``
        and ``reset`` as :meth:`GRUEncoder.forward` takes them."""
        features, hidden = self.encoder(obs, h0, reset)
        members, batch, steps, width = features.shape
        x = features.reshape(members, batch * steps, width)
        for layer in self._layers[:-1]:
            x = torch.baddbmm(layer.bias, x, layer.weight).relu_()
        head = self._layers[-1]
        q = torch.baddbmm(head.bias, x, head.weight)
        return q.view(members, batch, steps, -1), hidden

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``head(trunk(encoder(obs)))``, with the layers' parameters used directly: calling
        each submodule would add nn.Module's call machinery to every layer of the three
        passes an update makes. The same arithmetic. A recurrent network reads sequences
        (:meth:`sequence`): a lone observation has no episode behind it."""
        if self.recurrent:
            raise HindsightRLError("a gru network reads observation sequences: call "
                                   "QNetwork.sequence")
        if isinstance(self.encoder, ConvEncoder):
            x = self.encoder(obs)
            layers = self._layers[len(self.encoder.convs) + 1:-1]
        else:
            x = (obs - self.encoder.shift) * self.encoder.scale
            layers = self._layers[:-1]
        for layer in layers:
            x = torch.baddbmm(layer.bias, x, layer.weight).relu_()
        head = self._layers[-1]
        return torch.baddbmm(head.bias, x, head.weight)

    @classmethod
    def stack(cls, networks: Sequence[QNetwork]) -> QNetwork:
        """One network whose member ``k`` is a copy of ``networks[k]`` (each of one member)."""
        first = networks[0]
        stacked = cls(first.obs_dim, first.n_actions, first.config, members=len(networks),
                      image_shape=first.image_shape)
        load_stacked(stacked, networks)
        return stacked

    def member(self, k: int) -> QNetwork:
        """A network of one member: a copy of member ``k``."""
        network = QNetwork(self.obs_dim, self.n_actions, self.config,
                           image_shape=self.image_shape)
        network.load_state_dict(self.member_state(k))
        return network

    def numpy_forward(self) -> NumpyStack:
        """Q-values in numpy on views of the current weights (see :class:`NumpyStack`); a
        recurrent network's carry its hidden state (:class:`RecurrentNumpyStack`)."""
        return RecurrentNumpyStack(self) if self.recurrent else NumpyStack(self)


class NumpyStack:
    """Q-values of observations ``(members, batch, obs_dim)`` computed in numpy on views of a
    network's parameters, which share their memory and so always hold the current weights.
    Acting asks for one observation per member every env step, where torch's per-call
    overhead would be several times the arithmetic."""

    def __init__(self, network: QNetwork) -> None:
        self.shift = network.encoder.shift.numpy()
        self.scale = network.encoder.scale.numpy()
        self.image_shape = network.image_shape
        layers = [(layer, layer.weight.detach().numpy(), layer.bias.detach().numpy())
                  for _, layer in network.layers()]
        self.convs = [(weight, bias, layer.stride) for layer, weight, bias in layers
                      if isinstance(layer, StackedConv2d)]
        self.layers = [(weight, bias) for layer, weight, bias in layers
                       if isinstance(layer, StackedLinear)]

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        x = (np.asarray(obs, np.float32) - self.shift) * self.scale
        if self.convs:
            x = numpy_convolutions(x, self.image_shape, self.convs)
        return stacked_numpy_layers(x, self.layers)

    def member(self, k: int) -> NumpyStack:
        """Member ``k`` alone (still views of the network's current weights)."""
        view = object.__new__(NumpyStack)
        view.shift, view.scale = self.shift[k:k + 1], self.scale[k:k + 1]
        view.image_shape = self.image_shape
        view.convs = [(weight[k:k + 1], bias[k:k + 1], stride)
                      for weight, bias, stride in self.convs]
        view.layers = [(weight[k:k + 1], bias[k:k + 1]) for weight, bias in self.layers]
        return view

    def q_function(self, k: int = 0) -> Callable[[np.ndarray], np.ndarray]:
        """Member ``k``'s Q-values of a batch of observations ``(batch, obs_dim)``."""
        member = self.member(k)
        return lambda obs: member(np.asarray(obs)[None])[0]


def stacked_numpy_layers(x: np.ndarray, layers: Sequence[tuple[np.ndarray, np.ndarray]]
                         ) -> np.ndarray:
    """Stacked linear layers ``(weight (members, in, out), bias (members, 1, out))`` in
    numpy, each but the last followed by a ReLU."""
    for i, (weight, bias) in enumerate(layers):
        x = np.matmul(x, weight) + bias
        if i < len(layers) - 1:
            np.maximum(x, 0.0, out=x)
    return x


class RecurrentNumpyStack:
    """A recurrent network's Q-values in numpy on views of its parameters (always the
    current weights), carrying the hidden state from call to call: each call is the next
    step of the episodes in play. Acting feeds one observation per member per env step and
    zeroes a member's state when its episode starts (:meth:`reset`)."""

    def __init__(self, network: QNetwork) -> None:
        encoder = network.encoder
        self.shift, self.scale = encoder.shift.numpy(), encoder.scale.numpy()
        gru = encoder.gru
        # nn.GRUCell's (3·hidden, in) layout, as numpy_gru_step and a policy file take it.
        self.gru = (np.swapaxes(gru.weight_ih.detach().numpy(), 1, 2),
                    np.swapaxes(gru.weight_hh.detach().numpy(), 1, 2),
                    gru.bias_ih.detach().numpy(), gru.bias_hh.detach().numpy())
        self.layers = [(layer.weight.detach().numpy(), layer.bias.detach().numpy())
                       for _, layer in network.layers()]
        self.hidden = np.zeros((len(self.shift), 1, gru.hidden), np.float32)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Q-values ``(members, batch, n_actions)`` of the episodes' next observations
        ``(members, batch, obs_dim)``; the batch is that of the last :meth:`start`."""
        x = (np.asarray(obs, np.float32) - self.shift) * self.scale
        self.hidden = numpy_gru_step(x, self.hidden, *self.gru)
        return stacked_numpy_layers(self.hidden, self.layers)

    def start(self, batch: int) -> None:
        """Every member starts ``batch`` new episodes."""
        self.hidden = np.zeros((len(self.shift), batch, self.hidden.shape[2]), np.float32)

    def reset(self, k: int) -> None:
        """Member ``k``'s episodes start again."""
        self.hidden[k] = 0.0

    def member(self, k: int) -> RecurrentNumpyStack:
        """Member ``k`` alone (views of the network's current weights, a state of its own)."""
        view = object.__new__(RecurrentNumpyStack)
        view.shift, view.scale = self.shift[k:k + 1], self.scale[k:k + 1]
        view.gru = tuple(weight[k:k + 1] for weight in self.gru)
        view.layers = [(weight[k:k + 1], bias[k:k + 1]) for weight, bias in self.layers]
        view.hidden = np.zeros_like(self.hidden[k:k + 1])
        return view

    def q_function(self, k: int = 0) -> RecurrentQFunction:
        """Member ``k``'s Q-values of a batch of episodes' observations, step by step."""
        return RecurrentQFunction(self.member(k))


class RecurrentQFunction:
    """One network's Q-values of ``B`` episodes played side by side: :meth:`start` them,
    then call with each step's observations ``(B, obs_dim)``. How a recurrent network is
    judged and played (:class:`~hindsight_rl.core.evaluation.GreedyEvaluator`)."""

    def __init__(self, stack: RecurrentNumpyStack) -> None:
        self.stack = stack

    def start(self, episodes: int) -> None:
        self.stack.start(episodes)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.stack(np.asarray(obs)[None])[0]


NumpyConv = tuple[np.ndarray, np.ndarray, int]
"""``(weight (members, out, in, k, k), bias (members, out), stride)`` of one convolution."""


def numpy_conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray,
                 stride: int) -> np.ndarray:
    """Each member's convolution in numpy alone: ``x`` ``(members, batch, in, h, w)`` →
    ``(members, batch, out, h', w')``, as ``torch.nn.functional.conv2d`` computes it, by
    stride tricks: a read-only view of every kernel-sized window, then one contraction."""
    kernel = weight.shape[-1]
    windows = np.lib.stride_tricks.sliding_window_view(x, (kernel, kernel), axis=(3, 4))
    windows = windows[:, :, :, ::stride, ::stride]
    out = np.einsum("mbchwij,mocij->mbohw", windows, weight, optimize=True)
    return out + bias[:, None, :, None, None]


def numpy_convolutions(x: np.ndarray, image_shape: Sequence[int],
                       convs: Sequence[NumpyConv]) -> np.ndarray:
    """A ``cnn`` encoder's convolutions on normalised flat rows ``(members, batch, h·w·c
    + vector entries)``: the pixels read as channels-first images, each convolution then a
    ReLU, flattened (channels, height, width) with the entries after the pixels appended,
    as :class:`ConvEncoder` does."""
    members, batch, _ = x.shape
    height, width, channels = image_shape
    pixels = height * width * channels
    image = x[..., :pixels].reshape(members, batch, height, width, channels)
    image = image.transpose(0, 1, 4, 2, 3)
    for weight, bias, stride in convs:
        image = np.maximum(numpy_conv2d(image, weight, bias, stride), 0.0)
    image = image.reshape(members, batch, -1)
    return image if x.shape[2] == pixels else np.concatenate([image, x[..., pixels:]], axis=2)


NumpyLayer = tuple[np.ndarray, np.ndarray, str | None]
"""``(weight (out, in), bias, activation)`` of one linear layer; activation ``relu`` or None."""


def numpy_forward(obs: np.ndarray, shift: np.ndarray, scale: np.ndarray,
                  layers: list[NumpyLayer], image_shape: Sequence[int] | None = None,
                  convs: Sequence[NumpyConv] = ()) -> np.ndarray:
    """One network's forward pass in numpy alone, from a policy file's layer list: how a
    policy file is played without torch. ``convs`` (each weight and bias with a leading
    member axis of 1) come before ``layers`` for an image observation of ``image_shape``."""
    x = (obs - shift) * scale
    if convs:
        x = numpy_convolutions(x[None], image_shape, convs)[0]
    return numpy_layers(x, layers)


def numpy_layers(x: np.ndarray, layers: Sequence[NumpyLayer]) -> np.ndarray:
    """A policy file's linear layers on features ``(batch, in)``: also what a ``gru``
    encoder's hidden state goes through."""
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
