"""The quality gate: judge every final policy of the latest run from its file alone.

    python scripts/judge_policies.py [--data data] [--episodes 100] [--seed 3000000]

Plays the latest version of every pretrained and fine-tuned policy file as the file says
(its argmax, or its Boltzmann draws where it has ``acting``) on held-out episodes (seeds no
training or evaluation of the pipeline uses) and prints one line per policy; exits 1 when a
policy is below its environment's reward threshold or when a target's latest verdict says
transfer hurt. It imports nothing of the project: numpy, Gymnasium,
safetensors and the file's JSON document (docs/design.md, "Policy file") are all it needs
(and ``minigrid`` to register MiniGrid's ids), so a bug in the training code cannot also
hide in the judge. It plays every layer the format defines: linear, ``conv2d`` and ``gru``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
from safetensors.numpy import load

POLICIES = ("06_models/sources/*/pretrained_policy.safetensors",
            "06_models/*/seed_*/finetuned_policy.safetensors")


def latest(dataset: Path) -> Path:
    """The newest version's file of a versioned dataset folder."""
    version = max(dataset.iterdir(), key=lambda folder: folder.name)
    return version / dataset.name


def document_and_tensors(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    data = path.read_bytes()
    header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
    return json.loads(header["__metadata__"]["hindsight_rl"]), load(data)


# Environments that a package registers on import (the document names only the id).
REGISTERING_PACKAGES = {"MiniGrid-": "minigrid", "BabyAI-": "minigrid"}


def make_env(document: dict) -> gym.Env:
    """The environment the document names, with its overrides (and CartPole's cached
    derived attributes recomputed, as the design's override semantics require)."""
    spec = document["env"]
    for prefix, package in REGISTERING_PACKAGES.items():
        if spec["id"].startswith(prefix):
            importlib.import_module(package)
    env = gym.make(spec["id"], **spec.get("make_kwargs", {}))
    for name, value in spec.get("overrides", {}).items():
        setattr(env.unwrapped, name, value)
    base = env.unwrapped
    if hasattr(base, "polemass_length"):
        base.total_mass = base.masspole + base.masscart
        base.polemass_length = base.masspole * base.length
    return env


def observed(document: dict, obs: object, env: gym.Env | None = None) -> np.ndarray:
    """What the network sees of an observation (``env.observation``): a dict's entry, a flat
    observation's kept entries, an image flattened to its pixels in (height, width,
    channels) order (a channels-first one transposed: as ``channels`` says, else when its
    first axis is the smallest); then the agent's cell (``env.unwrapped.agent_pos``, so
    ``env`` is needed) where ``position`` says so."""
    selection = document["env"].get("observation") or {}
    if selection.get("key") is not None:
        obs = obs[selection["key"]]
    obs = np.asarray(obs, np.float64)
    if obs.ndim == 3 and (selection.get("channels") or (
            "first" if obs.shape[0] < min(obs.shape[1:]) else "last")) == "first":
        obs = obs.transpose(1, 2, 0)
    row = obs.reshape(-1)
    row = row if selection.get("keep") is None else row[selection["keep"]]
    if selection.get("position"):
        row = np.concatenate([row, np.asarray(env.unwrapped.agent_pos, np.float64)])
    return row


def forward(document: dict, tensors: dict[str, np.ndarray], obs: np.ndarray,
            memory: dict | None = None) -> np.ndarray:
    """``x = (obs - shift) * scale`` (the desired goal appended, normalised), its pixels read
    as an image where the document says so (the entries after them join the flattened
    convolutions), then each layer: a convolution (valid padding) or
    ``W x + b``, then its activation; a gru layer's hidden state is the features and is
    kept in ``memory`` from one step of an episode to the next (empty at its start).
    Returns Q-values, or an actor's means and log-stds."""
    goal = document["goal"]
    x = (obs - np.asarray(document["observation"]["shift"])) * np.asarray(
        document["observation"]["scale"])
    if goal is not None:
        desired = (np.asarray(goal["desired"]) - np.asarray(goal["shift"])) * np.asarray(
            goal["scale"])
        x = np.concatenate([x, desired])
    image, vectors = document["observation"].get("image"), x[:0]
    if image is not None:  # entries after the pixels join the flattened convolutions
        vectors = x[int(np.prod(image)):]
        x = x[:int(np.prod(image))].reshape(image).transpose(2, 0, 1)
    for layer in document["layers"]:
        if layer.get("kind") == "conv2d":
            x = convolve(x, tensors[layer["weight"]], tensors[layer["bias"]], layer["stride"])
        elif layer.get("kind") == "gru":
            x = gru_step(x, memory, layer, tensors)
        else:
            if x.ndim == 3:  # the first linear layer after the convolutions
                x = np.concatenate([x.reshape(-1), vectors])
            x = tensors[layer["weight"]].astype(np.float64) @ x + tensors[layer["bias"]]
        if layer.get("activation") == "relu":
            x = np.maximum(x, 0.0)
        elif layer.get("activation") is not None:
            raise ValueError(f"unknown activation {layer['activation']!r}")
    return x


def convolve(image: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int
             ) -> np.ndarray:
    """A (channels, height, width) image convolved with ``(out, in, k, k)`` kernels: every
    k×k window, ``stride`` apart, without padding (torch's ``conv2d``)."""
    k = weight.shape[-1]
    windows = np.lib.stride_tricks.sliding_window_view(image, (k, k), axis=(1, 2))
    windows = windows[:, ::stride, ::stride]
    return np.einsum("chwij,ocij->ohw", windows, weight.astype(np.float64)) + bias[:, None,
                                                                                   None]


def gru_step(x: np.ndarray, memory: dict | None, layer: dict,
             tensors: dict[str, np.ndarray]) -> np.ndarray:
    """One step of a GRU cell (gates r, z, n in torch's order) from the hidden state in
    ``memory`` (zero at an episode's start), which it replaces."""
    if memory is None:
        raise ValueError("a gru layer needs the episode's memory")
    h = memory.get("hidden", np.zeros(layer["hidden"]))
    gi = tensors[layer["weight_ih"]] @ x + tensors[layer["bias_ih"]]
    gh = tensors[layer["weight_hh"]] @ h + tensors[layer["bias_hh"]]
    (ir, iz, i_n), (hr, hz, h_n) = np.split(gi, 3), np.split(gh, 3)
    r, z = 1 / (1 + np.exp(-(ir + hr))), 1 / (1 + np.exp(-(iz + hz)))
    memory["hidden"] = (1 - z) * np.tanh(i_n + r * h_n) + z * h
    return memory["hidden"]


def action(document: dict, tensors: dict[str, np.ndarray], obs: np.ndarray,
           memory: dict | None = None, rng: np.random.Generator | None = None
           ) -> int | np.ndarray:
    """The file's action: ``argmax Q`` of a Q-network (format version 1, or kind
    ``q_network``), or a draw from ``softmax(Q / acting.temperature)`` (with ``rng``) where
    the file has that entry; ``tanh(mean) · scale + bias`` of a squashed Gaussian actor, with
    scale and bias from the action bounds."""
    x = forward(document, tensors, obs, memory)
    if document.get("kind", "q_network") == "q_network":
        if "acting" not in document:
            return int(x.argmax())
        weights = np.exp((x - x.max()) / document["acting"]["temperature"])
        return int(rng.choice(len(x), p=weights / weights.sum()))
    low, high = (np.asarray(document["action"][key], np.float64) for key in ("low", "high"))
    mean = x[:len(low)]
    return (np.tanh(mean) * (high - low) / 2 + (high + low) / 2).astype(np.float32)


def judge(path: Path, episodes: int, first_seed: int) -> tuple[str, float, float | None]:
    """Env id, mean return over ``episodes`` held-out episodes, reward threshold (the env's
    own, or the one the file declares for an env registered without one)."""
    document, tensors = document_and_tensors(path)
    env = make_env(document)
    returns, rng = [], np.random.default_rng(first_seed)
    for seed in range(first_seed, first_seed + episodes):
        obs, _ = env.reset(seed=seed)
        total, done, memory = 0.0, False, {}
        while not done:
            chosen = action(document, tensors, observed(document, obs, env), memory, rng)
            obs, reward, terminated, truncated, _ = env.step(chosen)
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    threshold = document["env"].get("reward_threshold")
    if threshold is None and env.spec is not None:
        threshold = env.spec.reward_threshold
    return document["env"]["id"], float(np.mean(returns)), threshold


def hurt_verdicts(data: Path) -> list[str]:
    """Targets whose latest transfer report says transfer hurt."""
    hurt = []
    for dataset in sorted(data.glob("08_reporting/*/transfer_metrics.json")):
        metrics = json.loads(latest(dataset).read_text())
        if metrics["verdict"].startswith("Transfer hurt"):
            hurt.append(f"{dataset.parent.name}: {metrics['verdict']}")
    return hurt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=3_000_000,
                        help="first held-out seed (the pipeline uses 1000000 and up)")
    args = parser.parse_args()
    failed = False
    datasets = sorted(d for pattern in POLICIES for d in args.data.glob(pattern))
    if not datasets:
        print(f"no policy files under {args.data}", file=sys.stderr)
        return 1
    for dataset in datasets:
        path = latest(dataset)
        env_id, mean, threshold = judge(path, args.episodes, args.seed)
        ok = threshold is None or mean >= threshold
        failed |= not ok
        print(f"{'PASS' if ok else 'FAIL'} {dataset.relative_to(args.data)}: {env_id} "
              f"{mean:.1f} over {args.episodes} episodes (threshold {threshold})")
    for line in hurt_verdicts(args.data):
        failed = True
        print(f"FAIL {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
