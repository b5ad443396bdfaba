"""SAC's two networks, named in the same parts as the Q-network so that transfer and freezing
speak of the same things across the discrete/continuous boundary.

Both read the observation through an ``encoder`` (the Q-network's: one layer, with the
input normalisation) and a ``trunk`` (the Q-network's hidden layers), so a pretrained
Q-network's encoder and trunk fit both unchanged; only the heads differ:

* :class:`GaussianActor`: ``head`` gives a mean and a log-standard-deviation per action
  entry; the action is ``tanh(u) · scale + bias`` with ``u ~ N(mean, std)`` (Haarnoja et al.
  2018), played deterministically as ``tanh(mean) · scale + bias``.
* :class:`TwinCritic`: the action enters beside the encoder's first layer (``action_in``,
  added to its pre-activation), so the encoder keeps the Q-network's shape; ``head`` gives
  one value. The twin critics of ``K`` seeds are ``2K`` members: ``[Q1 of seeds 0..K-1,
  Q2 of seeds 0..K-1]``, every layer still one batched product.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from hindsight_rl.core.config import NetworkConfig
from hindsight_rl.core.networks import (
    MLPEncoder,
    StackedLinear,
    StackedNetwork,
    TransferError,
    load_stacked,
    set_normalisation,
    stacked_trunk,
)

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
"""Bounds of the actor's log-standard-deviation (SB3's): the clamp the numpy player and the
policy file share."""
ACTOR_PARTS = ("encoder", "trunk", "head")
CRITIC_PARTS = ("encoder", "action_in", "trunk", "head")


class _ActorCriticPart(StackedNetwork):
    """What the actor and the critic add: the first layer's pre-activation, and the action
    bounds they are built for (``action_scale``, ``action_bias`` buffers)."""

    @property
    def action_low(self) -> np.ndarray:
        return (self.action_bias - self.action_scale)[0, 0].numpy().copy()

    @property
    def action_high(self) -> np.ndarray:
        return (self.action_bias + self.action_scale)[0, 0].numpy().copy()

    def _normalised_features(self, obs: torch.Tensor) -> torch.Tensor:
        """The encoder's first layer before its activation."""
        first = self.encoder[0]
        return torch.baddbmm(first.bias, (obs - self.encoder.shift) * self.encoder.scale,
                             first.weight)


class GaussianActor(_ActorCriticPart):
    """Squashed Gaussian policy of ``members`` networks: ``(members, batch, obs_dim)`` →
    mean and log-std ``(members, batch, action_dim)``."""

    PARTS = ACTOR_PARTS

    def __init__(self, obs_dim: int, action_low: np.ndarray, action_high: np.ndarray,
                 config: NetworkConfig, shift: np.ndarray | None = None,
                 scale: np.ndarray | None = None, members: int = 1,
                 log_std_init: float = 0.0) -> None:
        super().__init__()
        sizes = config.hidden_sizes
        action_dim = len(action_low)
        self.encoder = MLPEncoder(members, obs_dim, sizes[0])
        self.trunk = stacked_trunk(members, sizes)
        self.head = StackedLinear(members, sizes[-1], 2 * action_dim)
        low, high = (torch.as_tensor(np.asarray(b, np.float32)) for b in (action_low, action_high))
        self.register_buffer("action_scale", ((high - low) / 2).expand(members, 1, -1).clone())
        self.register_buffer("action_bias", ((high + low) / 2).expand(members, 1, -1).clone())
        with torch.no_grad():
            self.head.bias[:, :, action_dim:] = log_std_init
        set_normalisation(self.encoder, shift, scale)
        self.config = config
        self.log_std_init = log_std_init

    @property
    def action_dim(self) -> int:
        return int(self.action_scale.shape[2])

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._normalised_features(obs).relu()
        x = self.trunk(x)
        out = self.head(x)
        mean, log_std = out.split(self.action_dim, dim=2)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, obs: torch.Tensor, noise: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """An action per row and its log-probability ``(members, batch)``, reparameterised:
        ``noise`` (standard normal, drawn when None) makes it a function of the weights."""
        mean, log_std = self(obs)
        if noise is None:
            noise = torch.randn_like(mean)
        return squashed_gaussian(mean, log_std, noise, self.action_scale, self.action_bias)

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """``tanh(mean) · scale + bias``: how the policy is played and judged."""
        mean, _ = self(obs)
        return torch.tanh(mean) * self.action_scale + self.action_bias

    @classmethod
    def stack(cls, networks: Sequence[GaussianActor]) -> GaussianActor:
        """One network whose member ``k`` is a copy of ``networks[k]`` (each of one member)."""
        first = networks[0]
        stacked = cls(first.obs_dim, first.action_low, first.action_high, first.config,
                      members=len(networks), log_std_init=first.log_std_init)
        load_stacked(stacked, networks)
        return stacked

    def member(self, k: int) -> GaussianActor:
        """A network of one member: a copy of member ``k``."""
        network = GaussianActor(self.obs_dim, self.action_low, self.action_high, self.config,
                                log_std_init=self.log_std_init)
        network.load_state_dict(self.member_state(k))
        return network


def squashed_gaussian(mean: torch.Tensor, log_std: torch.Tensor, noise: torch.Tensor,
                      scale: torch.Tensor, bias: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """``a = tanh(u) · scale + bias`` with ``u = mean + std · noise``, and ``log π(a|s)``
    summed over action entries: the Gaussian's log-density minus the change of variables,
    ``log(1 − tanh(u)²) = 2 (log 2 − u − softplus(−2u))`` (exact and stable for large
    ``|u|``, where ``1 − tanh²`` rounds to 0), minus ``log scale``."""
    u = mean + log_std.exp() * noise
    gaussian = -0.5 * noise.pow(2) - log_std - 0.5 * math.log(2 * math.pi)
    squash = 2 * (math.log(2) - u - nn.functional.softplus(-2 * u))
    log_prob = (gaussian - squash - scale.log()).sum(dim=2)
    return torch.tanh(u) * scale + bias, log_prob


class ActionInput(nn.Module):
    """The action's weights in the critic's first layer: a linear map without a bias of its
    own (the encoder's is the layer's), initialised as ``nn.Linear`` would be."""

    def __init__(self, members: int, action_dim: int, features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(StackedLinear(members, action_dim, features).weight.data)


class TwinCritic(_ActorCriticPart):
    """Two Q-functions per seed: ``members`` is twice the number of seeds. Takes
    observations and actions ``(seeds, batch, ·)`` and gives ``(2, seeds, batch)``."""

    PARTS = CRITIC_PARTS

    def __init__(self, obs_dim: int, action_low: np.ndarray, action_high: np.ndarray,
                 config: NetworkConfig, shift: np.ndarray | None = None,
                 scale: np.ndarray | None = None, seeds: int = 1) -> None:
        super().__init__()
        sizes = config.hidden_sizes
        members = 2 * seeds
        action_dim = len(action_low)
        self.encoder = MLPEncoder(members, obs_dim, sizes[0])
        self.action_in = ActionInput(members, action_dim, sizes[0])
        self.trunk = stacked_trunk(members, sizes)
        self.head = StackedLinear(members, sizes[-1], 1)
        low, high = (torch.as_tensor(np.asarray(b, np.float32)) for b in (action_low, action_high))
        self.register_buffer("action_scale", ((high - low) / 2).view(1, 1, -1))
        self.register_buffer("action_bias", ((high + low) / 2).view(1, 1, -1))
        set_normalisation(self.encoder, shift, scale)
        self.config = config

    @property
    def seeds(self) -> int:
        return self.members // 2

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        twice = (2,) + (1,) * (obs.dim() - 1)
        obs, action = obs.repeat(twice), action.repeat(twice)
        unit_action = (action - self.action_bias) / self.action_scale
        x = self._normalised_features(obs)
        x = torch.baddbmm(x, unit_action, self.action_in.weight).relu()
        x = self.trunk(x)
        return self.head(x).view(2, self.seeds, -1)

    def member_slices(self, k: int) -> list[int]:
        """The members that are seed ``k``'s two critics."""
        return [k, self.seeds + k]


def transfer_into(source: nn.Module, actor: GaussianActor, critic: TwinCritic) -> list[str]:
    """Carry a pretrained network (a Q-network or an actor, one member) into a fresh actor
    and twin critic: the actor takes every part whose shapes fit (a Q-network's head never
    does), both critics take the encoder (with its input normalisation) and the trunk. The
    trunk must fit: it is what transfer means here. Returns the actor's parts carried over.
    """
    copied = []
    for name in ACTOR_PARTS:
        state = source.part(name).state_dict()
        if _fits(state, actor.part(name).state_dict()):
            actor.part(name).load_state_dict(state)
            copied.append(name)
        elif name == "trunk":
            raise TransferError(
                "pretrained trunk does not fit the target network: "
                f"{ {k: tuple(v.shape) for k, v in state.items()} } vs "
                f"{ {k: tuple(v.shape) for k, v in actor.trunk.state_dict().items()} }; use "
                "the same hidden_sizes")
    for name in ("encoder", "trunk"):
        state = source.part(name).state_dict()
        twins = {key: value.expand(critic.members, *value.shape[1:])
                 for key, value in state.items()}
        if name in copied:
            critic.part(name).load_state_dict(twins)
    return copied


def _fits(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> bool:
    return source.keys() == target.keys() and all(source[k].shape == target[k].shape
                                                  for k in target)
