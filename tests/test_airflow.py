"""``kedro airflow create`` turns the retrain pipeline into an Airflow 3 DAG with a schedule."""

import os
import re
import subprocess
import sys

import yaml

from tests.conftest import PROJECT_ROOT, copy_project


def _retrain_node_names() -> set[str]:
    targets = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_target.yml").read_text())
    names = set()
    for target, section in targets["targets"].items():
        names |= {f"{target}.collect_target_rollouts", f"{target}.promote"}
        seeds = section.get("seeds", [0, 1, 2])  # one node: runtime.seeds_per_node is null
        names.add(f"{target}.seeds_{'_'.join(str(seed) for seed in seeds)}.finetune")
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
