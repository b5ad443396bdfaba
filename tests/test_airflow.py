"""``kedro airflow create`` turns the retrain pipeline into an Airflow 3 DAG with a schedule."""

import os
import re
import subprocess
import sys

from hindsight_rl import settings
from tests.conftest import copy_project


def _retrain_node_names() -> set[str]:
    names = set()
    for target, branch in settings.DAG_SHAPE["targets"].items():
        names |= {f"{target}.plan_transfer", f"{target}.promote"}
        # the seeds of an arm in one node: seeds_per_node is None
        names.add(f"{target}.seeds_{'_'.join(str(seed) for seed in branch['seeds'])}.finetune")
    return names


def test_retrain_dag_compiles_and_runs_every_retrain_node(tmp_path):
    project = copy_project(tmp_path / "project")
    subprocess.run([sys.executable, "-m", "kedro", "airflow", "create", "--pipelines",
                    "retrain", "--target-dir", str(tmp_path / "dags")], cwd=project,
                   check=True, capture_output=True, env={**os.environ, "DO_NOT_TRACK": "1"})
    (dag_file,) = (tmp_path / "dags").glob("*.py")
    source = dag_file.read_text()
    compile(source, str(dag_file), "exec")
    assert "from airflow.sdk import dag, task" in source  # Airflow 3's task SDK
    assert 'schedule="0 3 * * 0"' in source and "max_active_runs=1" in source
    assert 'pipeline_name = "retrain"' in source
    tasks = set(re.findall(r'node_names=\["([^"]+)"\]', source))
    assert tasks == _retrain_node_names()
