"""Play a policy file greedily, from the file alone: ``python -m hindsight_rl.play FILE``.

Builds the environment the file's metadata names (with its overrides), acts with the pure
numpy forward pass, and prints the mean and spread of the returns.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hindsight_rl.core.errors import HindsightRLError
from hindsight_rl.core.evaluation import evaluate_greedy
from hindsight_rl.core.policy_file import NumpyPolicy, env_config_of


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hindsight_rl.play", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path, help="policy files (.safetensors)")
    parser.add_argument("--episodes", type=int, default=100, help="greedy episodes per file")
    parser.add_argument("--seed", type=int, default=2_000_000, help="seed of the first episode")
    parser.add_argument("--entry-point", metavar="MODULE:CLASS",
                        help="code of the custom environment the files name (a policy file "
                             "never names code itself)")
    args = parser.parse_args(argv)
    for path in args.files:
        try:
            print(json.dumps(_play(path, args)))
        except (OSError, HindsightRLError) as error:
            print(f"Error: {error}", file=sys.stderr)
            return 1
    return 0


def _play(path: Path, args: argparse.Namespace) -> dict[str, object]:
    """Greedy returns of one file's policy, summarised."""
    policy = NumpyPolicy(path.read_bytes(), source=str(path))
    env = env_config_of(policy.document, args.entry_point)
    returns = evaluate_greedy(env, policy.q_values, range(args.seed, args.seed + args.episodes))
    return {"file": str(path), "env": env.id, "overrides": env.overrides,
            "episodes": args.episodes, "mean": round(float(returns.mean()), 2),
            "std": round(float(returns.std()), 2), "min": float(returns.min())}


if __name__ == "__main__":
    raise SystemExit(main())
