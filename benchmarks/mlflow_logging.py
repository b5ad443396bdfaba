"""Seconds a tracked smoke run spends in MLflow logging: the time inside kedro-mlflow's hook and
ours (``MlflowTrackingHook``), against the run's wall time.

    python benchmarks/mlflow_logging.py                    # the default pipeline
    python benchmarks/mlflow_logging.py --pipeline retrain # after a default run

Runs ``kedro run --env smoke`` in a fresh copy of the project (config only, empty data and
store) in this process; with ``--pipeline retrain``, the default pipeline first (untimed),
since retraining needs a pretrained policy.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro_mlflow.framework.hooks.mlflow_hook import MlflowHook

from hindsight_rl.hooks import MlflowTrackingHook

PROJECT = Path(__file__).resolve().parents[1]
HOOK_METHODS = ("after_context_created", "after_catalog_created", "before_pipeline_run",
                "before_node_run", "after_node_run", "after_dataset_saved",
                "after_pipeline_run")


def timed(spent: dict[str, float], cls: type) -> None:
    """Wrap ``cls``'s hook methods so their time adds up in ``spent``."""
    for name in HOOK_METHODS:
        method = cls.__dict__.get(name)
        if method is None:
            continue

        @functools.wraps(method)
        def wrapper(*args: Any, _method: Any = method, _key: str = f"{cls.__name__}.{name}",
                    **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                spent[_key] += time.perf_counter() - start

        setattr(cls, name, wrapper)


def project_copy(root: Path) -> Path:
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT / name, root / name)
    shutil.copytree(PROJECT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    (root / "src").mkdir()
    return root


def run(project: Path, pipeline: str) -> float:
    start = time.perf_counter()
    with KedroSession.create(project_path=project, env="smoke") as session:
        session.run(pipeline_names=[pipeline])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="__default__")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        project = project_copy(Path(folder))
        bootstrap_project(project)
        if args.pipeline != "__default__":
            run(project, "__default__")
        spent: dict[str, float] = defaultdict(float)
        timed(spent, MlflowHook)
        timed(spent, MlflowTrackingHook)
        wall = run(project, args.pipeline)
    for key, seconds in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"{seconds:8.2f} s  {key}")
    print(f"{sum(spent.values()):8.2f} s  in MLflow hooks, of {wall:.1f} s for the run "
          f"({args.pipeline}, --env smoke)")


if __name__ == "__main__":
    main()
