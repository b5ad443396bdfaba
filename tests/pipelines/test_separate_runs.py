"""Two ``kedro run`` processes with the same config write byte-identical artefacts, and a
run never picks up another run's versions."""

import os
import subprocess
import sys

import torch

from hindsight_rl.core.config import EnvConfig, NetworkConfig
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.policy_file import (
    Policy,
    policy_from_bytes,
    policy_to_bytes,
    read_document,
    sha256_of,
)
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


INTRUDER = "2999-01-01T00.00.00.000Z"  # sorts after any version this run can save


def _intruder_policy() -> bytes:
    """A valid CartPole policy of the smoke network's shape that no run of ours wrote: what
    another run of the project saves while this one runs."""
    torch.manual_seed(12345)
    network = QNetwork(4, 2, NetworkConfig(hidden_sizes=(32, 32)))
    return policy_to_bytes(Policy(network=network, env=EnvConfig(id="CartPole-v1"), gamma=0.99,
                                  provenance={"written_by": "another run"}))


def test_a_run_fine_tunes_from_its_own_pretrained_policy_not_a_newer_one(tmp_path):
    """Kedro's "latest" is the newest version on disk. Another run's pretrained policy,
    newer than this run's when fine-tuning starts, must not be what this run fine-tunes."""
    project = copy_project(tmp_path)
    models = project / "data/06_models/sources/cartpole/pretrained_policy.safetensors"
    (models / INTRUDER).mkdir(parents=True)
    (models / INTRUDER / "pretrained_policy.safetensors").write_bytes(_intruder_policy())
    _run(project)
    (own,) = [v for v in models.iterdir() if v.name != INTRUDER]
    parents = {name: sha256_of(policy_from_bytes(
        (version / "pretrained_policy.safetensors").read_bytes()))
        for name, version in (("own", own), ("intruder", models / INTRUDER))}
    finetuned = sorted(project.glob("data/06_models/*/seed_*/finetuned_policy.safetensors/*/*"))
    assert len(finetuned) == 6
    assert {read_document(p.read_bytes())["provenance"]["parent_sha256"]
            for p in finetuned} == {parents["own"]}
