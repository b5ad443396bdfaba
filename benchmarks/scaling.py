"""Wall time of one 4-branch sweep under each runner, in one session.

    python benchmarks/scaling.py            # prints a table; --out FILE also writes it

The sweep is a DAG shape (two seeds per target, one node per seed: ``SWEEP``) set in a scratch
copy of the project's settings, as a user would edit ``settings.py``, with the values of
``conf/sweep`` (30k env steps). Pretrains once (``--pipeline source``), then runs the
MountainCar branch (collection, two seeds x fine-tune and scratch, evaluation) under
SequentialRunner, Kedro's ParallelRunner, ours (``hindsight_rl.runners.ParallelRunner``) and
DaskRunner, and reports each time and its speed-up over SequentialRunner. Ratios from one
session are what to compare: absolute times on a shared machine drift.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
RUNNERS = ("SequentialRunner", "ParallelRunner", "hindsight_rl.runners.ParallelRunner",
           "hindsight_rl.runners.DaskRunner")
SWEEP = {"targets": {"mountaincar": [0, 1], "cartpole_long_pole": [0, 1]},
         "seeds_per_node": 1, "ablation": {}}
"""The sweep's DAG shape: one task per seed and arm, four MountainCar branches to spread."""


def sweep_project(root: Path) -> Path:
    """A copy of the project in ``root`` whose settings.py has the sweep's shape."""
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT / name, root / name)
    shutil.copytree(PROJECT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    shutil.copytree(PROJECT / "src", root / "src",
                    ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    settings = root / "src" / "hindsight_rl" / "settings.py"
    settings.write_text(settings.read_text() + f"\nDAG_SHAPE = {SWEEP!r}\n")
    return root


def kedro_run(project: Path, *args: str) -> float:
    """Seconds of wall time of one ``kedro run --env sweep`` with ``args``."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kedro", "run", "--env", "sweep", *args],
                   cwd=project, check=True, capture_output=True,
                   env={**os.environ, "DO_NOT_TRACK": "1",
                        "PYTHONPATH": str(project / "src")})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        project = sweep_project(Path(scratch))
        kedro_run(project, "--pipeline", "source")
        seconds = {runner: kedro_run(project, "--namespaces", "mountaincar", "--runner", runner)
                   for runner in RUNNERS}
    lines = [f"4-branch sweep (SWEEP, conf/sweep), {os.cpu_count()} cores, Python "
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
