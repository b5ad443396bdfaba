"""``kedro airflow create`` turns pipelines into Airflow 3 DAGs with the project's template:
one dag_id per pipeline and env, tasks that run in the project folder with the DAG's env,
nodes joined by an in-memory dataset in one task, and one MLflow parent run per DAG run.

Airflow itself is not installed (it pulls ~60 packages): the generated module runs against a
stub of ``airflow.sdk`` that records the DAG's tasks, whose functions are then called as an
Airflow worker would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hindsight_rl import settings
from tests.conftest import copy_project


def _retrain_node_names() -> set[str]:
    names = set()
    for target, branch in settings.DAG_SHAPE["targets"].items():
        names |= {f"{target}.plan_transfer", f"{target}.promote"}
        # the seeds of an arm in one node: seeds_per_node is None
        names.add(f"{target}.seeds_{'_'.join(str(seed) for seed in branch['seeds'])}.finetune")
    return names


class _Task:
    """What ``@task`` returns when called in a DAG function: an operator for ``>>``."""

    def __init__(self, task_id: str, dag: _Dag) -> None:
        self.task_id, self.dag = task_id, dag

    def __rshift__(self, other: _Task) -> _Task:
        self.dag.upstream[other.task_id].add(self.task_id)
        return other


class _Dag:
    def __init__(self, **arguments: Any) -> None:
        self.arguments = arguments
        self.functions: dict[str, Callable[..., None]] = {}
        self.upstream: dict[str, set[str]] = {}


def _airflow_stub(dags: list[_Dag]) -> ModuleType:
    """``airflow.sdk`` with ``dag`` and ``task``, recording each DAG's task functions."""
    sdk = ModuleType("airflow.sdk")
    current: list[_Dag] = []

    def dag(**arguments: Any) -> Callable[[Callable[[], None]], Callable[[], _Dag]]:
        def decorate(body: Callable[[], None]) -> Callable[[], _Dag]:
            def build() -> _Dag:
                current.append(_Dag(**arguments))
                body()
                dags.append(current.pop())
                return dags[-1]
            return build
        return decorate

    def task(task_id: str) -> Callable[[Callable[..., None]], Callable[[], _Task]]:
        def decorate(function: Callable[..., None]) -> Callable[[], _Task]:
            def instantiate() -> _Task:
                current[-1].functions[task_id] = function
                current[-1].upstream[task_id] = set()
                return _Task(task_id, current[-1])
            return instantiate
        return decorate

    sdk.dag, sdk.task = dag, task
    return sdk


@pytest.fixture(scope="module")
def dags(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """A project copy and its two DAG files, `kedro airflow create --env smoke` (no other
    option: the template and grouping are the project's defaults)."""
    project = copy_project(tmp_path_factory.mktemp("project"))
    subprocess.run([sys.executable, "-m", "kedro", "airflow", "create", "--pipelines",
                    "__default__,retrain", "--env", "smoke", "--target-dir", "dags"],
                   cwd=project, check=True, capture_output=True,
                   env={**os.environ, "DO_NOT_TRACK": "1"})
    files = {"__default__": project / "dags" / "hindsight_rl_smoke_dag.py",
             "retrain": project / "dags" / "hindsight_rl_smoke_retrain_dag.py"}
    return project, files


def _load(dag_file: Path, monkeypatch: pytest.MonkeyPatch) -> _Dag:
    built: list[_Dag] = []
    monkeypatch.setitem(sys.modules, "airflow", ModuleType("airflow"))
    monkeypatch.setitem(sys.modules, "airflow.sdk", _airflow_stub(built))
    exec(compile(dag_file.read_text(), str(dag_file), "exec"), {"__name__": "dag_module"})
    (dag,) = built
    return dag


def test_each_dag_has_its_own_id_env_project_folder_and_schedule(dags, monkeypatch):
    project, files = dags
    loaded = {name: _load(path, monkeypatch) for name, path in files.items()}
    assert {name: dag.arguments["dag_id"] for name, dag in loaded.items()} == {
        "__default__": "hindsight-rl-default-smoke", "retrain": "hindsight-rl-retrain-smoke"}
    for path in files.values():
        source = path.read_text()
        assert 'env = "smoke"' in source
        assert f"project_path = Path({json.dumps(str(project.resolve()))})" in source
        assert "Path.cwd()" not in source
    retrain = loaded["retrain"]
    assert retrain.arguments["schedule"] == "0 3 * * 0"  # conf/base/airflow.yml
    assert retrain.arguments["max_active_runs"] == 1
    tasks = set(re.findall(r'node_names=\["([^"]+)"\]', files["retrain"].read_text()))
    assert tasks == _retrain_node_names()


def test_the_pretraining_runs_in_one_task_as_a_worker_would_elsewhere(dags, monkeypatch,
                                                                      tmp_path):
    """The default DAG's first tasks, called from another folder without KEDRO_ENV: the
    network pretrain hands export_weights in memory is in the same task; both tasks ran with
    the smoke env, and MLflow holds them as children of one run for the DAG run."""
    import mlflow

    project, files = dags
    dag = _load(files["__default__"], monkeypatch)
    pretraining = "sources-cartpole-pretrain-sources-cartpole-export-weights"
    assert dag.upstream[pretraining] == {"sources-cartpole-collect-source-rollouts"}
    monkeypatch.delenv("KEDRO_ENV", raising=False)
    for name in ("AIRFLOW_CTX_DAG_ID", "AIRFLOW_CTX_DAG_RUN_ID"):
        monkeypatch.delenv(name, raising=False)  # the task sets them
    elsewhere = tmp_path / "worker"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    dag_run = "scheduled__2026-12-06T03:00:00+00:00"
    dag.functions["sources-cartpole-collect-source-rollouts"](run_id=dag_run)
    os.chdir(elsewhere)
    dag.functions[pretraining](run_id=dag_run)

    assert not list(elsewhere.iterdir()), "nothing is written where the worker started"
    policies = project / "data/06_models/sources/cartpole/pretrained_policy.safetensors"
    assert len(list(policies.iterdir())) == 1
    manifests = sorted((project / "data/08_reporting/run_manifest.json").iterdir())
    runs = [json.loads(next(path.glob("*.json")).read_text()) for path in manifests]
    assert [run["run_params"]["env"] for run in runs] == ["smoke", "smoke"]
    assert [run["status"] for run in runs] == ["completed", "completed"]

    client = mlflow.MlflowClient(f"sqlite:///{project.resolve().as_posix()}/mlruns.db")
    experiment = client.get_experiment_by_name("hindsight-rl")
    (parent,) = client.search_runs(
        [experiment.experiment_id], "tags.`airflow.dag_run_id` = '" + dag_run + "'")
    assert parent.info.run_name == f"hindsight-rl-default-smoke {dag_run}"
    assert parent.info.status == "FINISHED"
    children = client.search_runs(
        [experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(run.info.run_name for run in children) == sorted(
        f"__default__ {run['saved_version']}" for run in runs)
