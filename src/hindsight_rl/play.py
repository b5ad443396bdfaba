"""Play a policy file greedily, from the file alone: ``python -m hindsight_rl.play FILE``.

Builds the environment the file's metadata names (with its overrides), acts with the pure
numpy forward pass, and prints the mean and spread of the returns.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hindsight_rl.core.evaluation import evaluate_greedy
from hindsight_rl.core.policy_file import NumpyPolicy, PolicyFileError, env_config_of


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hindsight_rl.play", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path, help="policy files (.safetensors)")
    parser.add_argument("--episodes", type=int, default=100, help="greedy episodes per file")
    parser.add_argument("--seed", type=int, default=2_000_000, help="seed of the first episode")
    args = parser.parse_args(argv)
    for path in args.files:
        try:
            policy = NumpyPolicy(path.read_bytes(), source=str(path))
        except (OSError, PolicyFileError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        env = policy.document["env"]
        returns = evaluate_greedy(env_config_of(policy.document), policy.q_values,
                                  range(args.seed, args.seed + args.episodes))
        print(json.dumps({"file": str(path), "env": env["id"], "overrides": env["overrides"],
                          "episodes": args.episodes, "mean": round(float(returns.mean()), 2),
                          "std": round(float(returns.std()), 2),
                          "min": float(returns.min())}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
