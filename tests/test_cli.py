"""``kedro run`` turns bad input into one clear paragraph and a non-zero exit, before work."""

import os
import subprocess
import sys

import pytest

from tests.conftest import copy_project


def _kedro_run(project, *args):
    return subprocess.run([sys.executable, "-m", "kedro", "run", "--env", "smoke", *args],
                          cwd=project, capture_output=True, text=True,
                          env={**os.environ, "DO_NOT_TRACK": "1"})


def _files(folder):
    return [p for p in folder.rglob("*") if p.is_file() and p.name != ".gitkeep"]


@pytest.mark.parametrize(("params", "message"), [
    ("targets.mountaincar.dqn.gamma=1.5",
     "Error: targets.mountaincar.dqn.gamma: got 1.5, expected a number in (0, 1]"),
    ("targets.cartpole_long_pole.finetune.frozen=[torso]",
     "Error: targets.cartpole_long_pole.finetune.frozen[0]: got 'torso', expected one of "
     "'encoder', 'trunk' or 'head'"),
    ("targets.mountaincar.env.id=MountainCar-v1",
     "Error: targets.mountaincar.env.id: unknown Gymnasium environment 'MountainCar-v1'. "
     "Did you mean MountainCar-v0"),
    ("targets.mountaincar.env.overrides.gravityy=0.1",
     "Error: targets.mountaincar.env.overrides.gravityy: MountainCarEnv has no attribute"),
])
def test_bad_parameters_fail_in_one_paragraph_before_any_work(tmp_path, params, message):
    project = copy_project(tmp_path)
    result = _kedro_run(project, "--params", params)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not _files(project / "data"), "nothing may run before the parameters are checked"


def test_a_corrupted_pretrained_policy_names_the_file(tmp_path):
    project = copy_project(tmp_path)
    version = (project / "data/06_models/sources/cartpole/pretrained_policy.safetensors"
               / "2026-01-01T00.00.00.000Z")
    version.mkdir(parents=True)
    (version / "pretrained_policy.safetensors").write_bytes(b"not a policy file at all")
    result = _kedro_run(project, "--pipeline", "target")
    assert result.returncode == 1
    assert (f"Error: {version}/pretrained_policy.safetensors: not a hindsight-rl policy file"
            in result.stderr.replace("\n", ""))
    assert "Traceback" not in result.stderr + result.stdout
