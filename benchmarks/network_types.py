"""The CNN and GRU DQN updates against a plain PyTorch loop of the same update, in one run.

    python benchmarks/network_types.py            # 1 and 3 seeds, 8 rounds (~1.5 min)
    python benchmarks/network_types.py --quick    # 2 short rounds: a check that it runs

What it measures: seed-updates/s of our update (``dqn_loss`` or ``drqn_loss``, then
``StackedOptimizer.step`` on the summed loss) on ``K`` seeds stacked as the members of one
``QNetwork``, against the same double-DQN update written as an ordinary PyTorch loop: per
seed an ``nn.Sequential`` (or ``nn.GRU`` and an ``nn.Sequential``), its own target copy,
``torch.optim.Adam`` (its default, per-tensor implementation), ``clip_grad_norm_``, seed after
seed. Both sides get batches made before timing (ours in the layout training samples into,
the plain loop as contiguous tensors of the same numbers), so no sampling is timed, nor the
target copy; both run under the flush of subnormal floats our training sets.

- ``cnn``: MiniGrid DoorKey's source settings: a 7×7×3 image (147 entries), 7 actions, the
  default convolutions (2×2 kernels, 16-32-64 channels, stride 1), a 64-64 network, batch 64,
  3-step targets, learning rate 5e-4.
- ``gru``: the recurrent pipeline's target (CartPole-v1 with its velocities hidden): 2 inputs,
  2 actions, a 128-wide GRU then 128-128, 32 windows of 8 burn-in + 16 steps from a
  ``SequenceReplay`` (3-step targets, ``learn_from_episode_start``) holding synthetic
  episodes, learning rate 1e-3; the loss masked by ``learn``.

Before timing, each case checks once that both sides give every seed the same loss and
gradient norm for the same weights (ours copied into the plain networks), so the two time the
same arithmetic. Timing alternates ours and plain in rounds so that drift in machine load
hits both; the table gives the medians over rounds and the ratio ours ÷ plain. One torch
thread. Compare ratios within one run, not absolute rates across runs.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hindsight_rl.core.config import DQNConfig, NetworkConfig
from hindsight_rl.core.dqn import dqn_loss, subnormals_flushed
from hindsight_rl.core.drqn import SequenceTensors, at_positions, drqn_loss
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.replay import Batch, batch_arrays
from hindsight_rl.core.sequence_replay import SequenceReplay
from hindsight_rl.core.stacked import StackedOptimizer, member_norms

IMAGE = (7, 7, 3)
BATCHES = 16
"""Pre-made batches per side, used in turn."""
STACKS = (1, 3)

Update = Callable[[int], None]
"""One update on pre-made batch ``i`` (of ours: every member; of the plain loop: every
seed, one after another)."""


@dataclass
class Case:
    """One network type: how to build each side and time its update."""

    name: str
    config: DQNConfig
    updates: int
    """Updates per side per round at one seed (fewer for more seeds: the same seed-updates)."""


CASES = {
    "cnn": Case("cnn", DQNConfig(learning_rate=5e-4, batch_size=64, gamma=0.99, n_step=3,
                                 double_dqn=True, max_grad_norm=10.0), 300),
    "gru": Case("gru", DQNConfig(learning_rate=1e-3, batch_size=32, gamma=0.99, n_step=3,
                                 double_dqn=True, max_grad_norm=10.0), 80),
}


# --- the CNN case -------------------------------------------------------------------------

def cnn_network(members: int) -> QNetwork:
    """Our DoorKey network, inputs normalised as the env's bounds [0, 10] give."""
    network = QNetwork(147, 7, NetworkConfig(hidden_sizes=(64, 64), encoder="cnn"),
                       shift=np.full(147, 5.0, np.float32), scale=np.full(147, 0.2, np.float32),
                       members=members, image_shape=IMAGE)
    return network


def cnn_batches(members: int, batch_size: int, gamma: float, n_step: int,
                rng: np.random.Generator) -> list[Batch]:
    """``BATCHES`` batches in the layout ``_StackRun`` samples into (views of one table per
    batch, from :func:`batch_arrays`), filled with DoorKey-like rows: integer cells 0-10,
    rare rewards, some terminations."""
    batches = []
    for _ in range(BATCHES):
        (table, action), batch = batch_arrays(members, batch_size, 147)
        shape = (members, batch_size)
        table[..., :147] = rng.integers(0, 11, (*shape, 147))
        table[..., 147] = np.where(rng.random(shape) < 0.05, rng.random(shape), 0.0)
        table[..., 148:295] = rng.integers(0, 11, (*shape, 147))
        table[..., 295] = np.where(rng.random(shape) < 0.05, 0.0, gamma ** n_step)
        action[...] = rng.integers(0, 7, action.shape)
        batches.append(batch)
    return batches


def plain_cnn() -> nn.Sequential:
    """The same network as an ordinary module: convolutions, flatten, encoder, trunk, head."""
    return nn.Sequential(nn.Conv2d(3, 16, 2), nn.ReLU(), nn.Conv2d(16, 32, 2), nn.ReLU(),
                         nn.Conv2d(32, 64, 2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(64 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, 7))


def load_plain_cnn(plain: nn.Module, ours: QNetwork, k: int) -> None:
    """Member ``k``'s weights into ``plain``'s convolutions and linear layers, in order
    (linear weights stored ``(in, out)`` by ours); also how ``vs_sb3.py`` fills SB3's."""
    layers = [layer for _, layer in ours.layers()]
    modules = [m for m in plain.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    with torch.no_grad():
        for module, layer in zip(modules, layers, strict=True):
            weight = layer.weight[k]
            module.weight.copy_(weight if isinstance(module, nn.Conv2d) else weight.T)
            module.bias.copy_(layer.bias[k].flatten())


def cnn_q(net: nn.Sequential, obs: torch.Tensor) -> torch.Tensor:
    """Q-values of flat image rows ``(B, 147)``: normalised, read channels-first."""
    x = ((obs - 5.0) * 0.2).view(-1, *IMAGE).permute(0, 3, 1, 2)
    return net(x)


def plain_dqn_loss(online: nn.Module, target: nn.Module, batch: tuple[torch.Tensor, ...],
                   ) -> torch.Tensor:
    """One seed's double-DQN n-step Huber loss on ``(obs, action, reward, next_obs,
    discount)``."""
    obs, action, reward, next_obs, discount = batch
    with torch.no_grad():
        best = cnn_q(online, next_obs).argmax(1, keepdim=True)
        y = reward + discount * cnn_q(target, next_obs).gather(1, best)[:, 0]
    return F.smooth_l1_loss(cnn_q(online, obs).gather(1, action)[:, 0], y)


def plain_cnn_batch(batch: Batch, k: int) -> tuple[torch.Tensor, ...]:
    """Seed ``k``'s part of one of our batches as contiguous tensors."""
    return tuple(t[k].contiguous() for t in (batch.obs, batch.action, batch.bootstrap_reward,
                                             batch.bootstrap_obs, batch.discount))


# --- the GRU case -------------------------------------------------------------------------

def gru_network(members: int) -> QNetwork:
    """Our recurrent CartPole network (normalisation left at identity)."""
    return QNetwork(2, 2, NetworkConfig(hidden_sizes=(128, 128), encoder="gru"),
                    members=members)


def filled_replay(seed: int, gamma: float, n_step: int, steps: int = 5_000) -> SequenceReplay:
    """A sequence replay holding ``steps`` steps of synthetic CartPole-like episodes (10-200
    steps, reward 1, each ending in a termination)."""
    rng = np.random.default_rng(seed)
    replay = SequenceReplay(steps, 2, rng, gamma, burn_in=8, length=16, n_step=n_step,
                            learn_from_episode_start=True)
    obs = rng.normal(size=2).astype(np.float32)
    left = int(rng.integers(10, 201))
    for _ in range(steps):
        next_obs = rng.normal(size=2).astype(np.float32)
        left -= 1
        replay.add(obs, int(rng.integers(2)), 1.0, next_obs, left == 0, False)
        obs = next_obs
        if left == 0:
            left = int(rng.integers(10, 201))
    return replay


def gru_batches(members: int, batch_size: int, gamma: float, n_step: int,
                seed: int) -> list[SequenceTensors]:
    """``BATCHES`` stacked batches, member ``k`` sampling its own replay."""
    replays = [filled_replay(seed + k, gamma, n_step) for k in range(members)]
    return [SequenceTensors.stack([replay.sample(batch_size) for replay in replays])
            for _ in range(BATCHES)]


class PlainGRUQ(nn.Module):
    """``nn.GRU`` then an ``nn.Sequential`` trunk and head: Q-values of every position."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(2, 128, batch_first=True)
        self.layers = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 2))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.layers(self.gru(obs)[0])


def load_plain_gru(plain: PlainGRUQ, ours: QNetwork, k: int) -> None:
    """Member ``k``'s weights into ``plain`` (``nn.GRU``'s layout is ``nn.GRUCell``'s)."""
    with torch.no_grad():
        for name, value in ours.encoder.gru.member(k)._asdict().items():
            getattr(plain.gru, f"{name}_l0").copy_(value)
        linears = [m for m in plain.layers if isinstance(m, nn.Linear)]
        for module, (_, layer) in zip(linears, ours.layers(), strict=True):
            module.weight.copy_(layer.weight[k].T)
            module.bias.copy_(layer.bias[k].flatten())


def plain_drqn_loss(online: PlainGRUQ, target: PlainGRUQ, batch: tuple[torch.Tensor, ...],
                    ) -> torch.Tensor:
    """One seed's double-DQN n-step Huber loss over the windows' steps that learn, from a
    zero state at each window's start, bootstrapping at the given positions."""
    obs, action, learn, reward, step, discount = batch
    q = online(obs)
    q_taken = q[:, :-1].gather(2, action[..., None])[..., 0]
    with torch.no_grad():
        next_q = at_positions(target(obs)[None], step[None])[0]
        best = at_positions(q.detach()[None], step[None])[0].argmax(2, keepdim=True)
        y = reward + discount * next_q.gather(2, best)[..., 0]
    errors = F.smooth_l1_loss(q_taken, y, reduction="none") * learn
    return errors.sum() / learn.sum().clamp(min=1.0)


def plain_gru_batch(batch: SequenceTensors, k: int) -> tuple[torch.Tensor, ...]:
    """Seed ``k``'s part of one stacked batch (every window resets only at its start)."""
    return tuple(t[k].contiguous() for t in (batch.obs, batch.action, batch.learn,
                                             batch.bootstrap_reward, batch.bootstrap_step,
                                             batch.discount))


# --- both sides ---------------------------------------------------------------------------

@dataclass
class Sides:
    """Ours and the plain loop, built on the same weights and batches."""

    ours: Update
    plain: Update
    ours_losses: Callable[[int], torch.Tensor]
    plain_losses: Callable[[int], torch.Tensor]
    ours_norms: Callable[[int], torch.Tensor]
    plain_norms: Callable[[int], torch.Tensor]


def build(case: Case, members: int) -> Sides:
    """Both sides of ``case`` for ``members`` seeds: our stacked network, its target and
    optimiser; per seed a plain network holding the same weights, its target and Adam."""
    config = case.config
    torch.manual_seed(members)
    if case.name == "cnn":
        online = cnn_network(members)
        batches = cnn_batches(members, config.batch_size, config.gamma, config.n_step,
                              np.random.default_rng(members))
        our_loss = dqn_loss
        plain_nets = [plain_cnn() for _ in range(members)]
        load, plain_loss, split = load_plain_cnn, plain_dqn_loss, plain_cnn_batch
    else:
        online = gru_network(members)
        batches = gru_batches(members, config.batch_size, config.gamma, config.n_step,
                              seed=10 * members)
        our_loss = drqn_loss
        plain_nets = [PlainGRUQ() for _ in range(members)]
        load, plain_loss, split = load_plain_gru, plain_drqn_loss, plain_gru_batch
    target = copy.deepcopy(online).requires_grad_(False)
    optimizer = StackedOptimizer(online, (), config.learning_rate, config.max_grad_norm)
    for k, net in enumerate(plain_nets):
        load(net, online, k)
    plain_targets = [copy.deepcopy(net).requires_grad_(False) for net in plain_nets]
    adams = [torch.optim.Adam(net.parameters(), lr=config.learning_rate) for net in plain_nets]
    plain_batches = [[split(batch, k) for batch in batches] for k in range(members)]

    def ours(i: int) -> None:
        optimizer.step(our_loss(batches[i % BATCHES], online, target, config).sum())

    def plain(i: int) -> None:
        for k in range(members):
            loss = plain_loss(plain_nets[k], plain_targets[k], plain_batches[k][i % BATCHES])
            adams[k].zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(plain_nets[k].parameters(), config.max_grad_norm)
            adams[k].step()

    def ours_losses(i: int) -> torch.Tensor:
        return our_loss(batches[i], online, target, config)

    def plain_losses(i: int) -> torch.Tensor:
        return torch.stack([plain_loss(plain_nets[k], plain_targets[k], plain_batches[k][i])
                            for k in range(members)])

    def ours_norms(i: int) -> torch.Tensor:
        return member_norms(torch.autograd.grad(ours_losses(i).sum(), optimizer.trainable))

    def plain_norms(i: int) -> torch.Tensor:
        norms = []
        for k, net in enumerate(plain_nets):
            grads = torch.autograd.grad(
                plain_loss(net, plain_targets[k], plain_batches[k][i]), list(net.parameters()))
            norms.append(torch.linalg.vector_norm(torch.stack(
                [torch.linalg.vector_norm(g) for g in grads])))
        return torch.stack(norms)

    return Sides(ours, plain, ours_losses, plain_losses, ours_norms, plain_norms)


def check_same_arithmetic(sides: Sides, label: str) -> str:
    """Every seed's loss and gradient norm on both sides, on every pre-made batch, before
    any update: equal to float32 rounding, or an error."""
    with torch.no_grad():
        ours = torch.cat([sides.ours_losses(i) for i in range(BATCHES)])
        plain = torch.cat([sides.plain_losses(i) for i in range(BATCHES)])
    ours_norm = torch.cat([sides.ours_norms(i) for i in range(BATCHES)])
    plain_norm = torch.cat([sides.plain_norms(i) for i in range(BATCHES)])
    for what, a, b in (("loss", ours, plain), ("gradient norm", ours_norm, plain_norm)):
        if not torch.allclose(a, b, rtol=1e-4, atol=1e-6):
            raise AssertionError(f"{label}: {what} differs, ours {a.tolist()} vs plain "
                                 f"{b.tolist()}")
    worst = max(float(((ours - plain).abs() / plain.abs()).max()),
                float(((ours_norm - plain_norm).abs() / plain_norm.abs()).max()))
    return f"{label}: same loss and gradient norm (largest relative difference {worst:.1e})"


def timed(update: Update, updates: int, start: int) -> float:
    """Seconds of ``updates`` calls of ``update`` on batches ``start, start + 1, ...``."""
    begin = time.perf_counter()
    for i in range(start, start + updates):
        update(i)
    return time.perf_counter() - begin


def measure(sides: Sides, members: int, updates: int, rounds: int) -> dict[str, list[float]]:
    """Seed-updates/s of each side, per round, the order flipping every round."""
    for update in (sides.ours, sides.plain):
        timed(update, max(updates // 10, 5), 0)  # warm-up: allocator, first-call costs
    rates: dict[str, list[float]] = {"ours": [], "plain": []}
    for r in range(rounds):
        order = ("ours", "plain") if r % 2 == 0 else ("plain", "ours")
        for side in order:
            seconds = timed(getattr(sides, side), updates, r * updates)
            rates[side].append(members * updates / seconds)
    return rates


def run_case(case: Case, rounds: int, scale: float) -> tuple[list[str], list[str]]:
    """Table rows and arithmetic checks of one network type at every stack size."""
    rows, checks = [], []
    for members in STACKS:
        sides = build(case, members)
        checks.append(check_same_arithmetic(sides, f"{case.name}, {members} seed(s)"))
        updates = max(int(case.updates * scale / members), 2)
        with subnormals_flushed():
            rates = measure(sides, members, updates, rounds)
        ours, plain = (statistics.median(rates[side]) for side in ("ours", "plain"))
        ratios = [a / b for a, b in zip(rates["ours"], rates["plain"], strict=True)]
        what = "1 seed" if members == 1 else f"{members} seeds (ours stacked)"
        rows.append(f"| {case.name} | {what} | {ours:.0f} | {plain:.0f} | **{ours / plain:.2f}** "
                    f"| {min(ratios):.2f}–{max(ratios):.2f} |")
    return rows, checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 short rounds: checks that it runs; its figures mean little")
    parser.add_argument("--rounds", type=int, default=8, help="timing rounds per setting")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=sorted(CASES))
    args = parser.parse_args()
    torch.set_num_threads(1)
    rounds, scale = (2, 0.2) if args.quick else (args.rounds, 1.0)
    lines = ["| network | seeds | ours seed-updates/s | plain loop seed-updates/s "
             "| ours ÷ plain | per-round range |", "|---|---|---|---|---|---|"]
    checks = []
    for name in args.cases:
        rows, case_checks = run_case(CASES[name], rounds, scale)
        lines += rows
        checks += case_checks
    print("\n".join([*checks, "", *lines, "", f"medians over {rounds} alternating rounds; "
                     f"torch {torch.__version__}, 1 thread"]))


if __name__ == "__main__":
    main()
