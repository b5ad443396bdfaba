"""Two ``kedro run`` processes with the same config write byte-identical artefacts."""

import os
import subprocess
import sys

from tests.conftest import copy_project

ARTEFACTS = ("data/01_raw/sources/cartpole/source_rollouts.parquet",
             "data/06_models/sources/cartpole/pretrained_policy.safetensors",
             "data/03_primary/mountaincar/hindsight_dataset.parquet",
             "data/06_models/mountaincar/seed_1/finetuned_policy.safetensors",
             "data/07_model_output/mountaincar/seed_1/scratch_history.parquet")


def _run(project):
    subprocess.run([sys.executable, "-m", "kedro", "run", "--env", "smoke", "--pipelines",
                    "source,target,finetune"],
                   cwd=project, check=True, capture_output=True,
                   env={**os.environ, "DO_NOT_TRACK": "1"})


def _contents(project, path):
    (version,) = (project / path).iterdir()
    return [p.read_bytes() for p in sorted(version.rglob("*")) if p.is_file()]


def test_two_processes_write_identical_datasets_and_weights(tmp_path):
    first, second = (copy_project(tmp_path / name) for name in ("first", "second"))
    for project in (first, second):
        _run(project)
    for path in ARTEFACTS:
        contents = _contents(first, path)
        assert contents and contents == _contents(second, path), path
