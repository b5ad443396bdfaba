"""Wall time of one 4-branch sweep (``conf/sweep``) under each runner, in one session.

    python benchmarks/scaling.py            # prints a table; --out FILE also writes it

Pretrains once (``--pipeline source``), then runs the MountainCar branch (collection, two
seeds x fine-tune and scratch, evaluation) under SequentialRunner, Kedro's ParallelRunner,
ours (``hindsight_rl.runners.ParallelRunner``) and DaskRunner, and reports each time and its
speed-up over SequentialRunner. Ratios from one session are what to compare: absolute times
on a shared machine drift.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
RUNNERS = ("SequentialRunner", "ParallelRunner", "hindsight_rl.runners.ParallelRunner",
           "hindsight_rl.runners.DaskRunner")


def kedro_run(*args: str) -> float:
    """Seconds of wall time of one ``kedro run --env sweep`` with ``args``."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kedro", "run", "--env", "sweep", *args],
                   cwd=PROJECT, check=True, capture_output=True,
                   env={**os.environ, "DO_NOT_TRACK": "1"})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    kedro_run("--pipeline", "source")
    seconds = {runner: kedro_run("--namespaces", "mountaincar", "--runner", runner)
               for runner in RUNNERS}
    lines = [f"4-branch sweep (conf/sweep), {os.cpu_count()} cores, Python "
             f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}", "",
             "| runner | wall time (s) | speed-up vs SequentialRunner |", "|---|---|---|"]
    base = seconds["SequentialRunner"]
    lines += [f"| {runner} | {t:.1f} | {base / t:.2f}x |" for runner, t in seconds.items()]
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
