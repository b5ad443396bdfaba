"""``kedro run`` turns bad input into one clear paragraph and a non-zero exit, before work."""

import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT, copy_project


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
    ("targets.mountaincar.env.make_kwargs.max_episode_steps=5",
     "Error: targets.mountaincar.env.make_kwargs.max_episode_steps: got 5, but "
     "MountainCar-v0's reward threshold (-110) holds for its own time limit (200 steps) only"),
    ("targets.cartpole_long_pole.env.overrides.length=-1.0",
     "Error: targets.cartpole_long_pole.env.overrides.length: got -1.0, expected a number > 0"),
    ("runtime.checkpoint_dir=/proc/self/checkpoints",
     "Error: runtime.checkpoint_dir: cannot write checkpoints to /proc/self/checkpoints"),
])
def test_bad_parameters_fail_in_one_paragraph_before_any_work(tmp_path, params, message):
    project = copy_project(tmp_path)
    result = _kedro_run(project, "--params", params)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not _files(project / "data"), "nothing may run before the parameters are checked"


def _corrupted_pretrained_policy(project):
    version = (project / "data/06_models/sources/cartpole/pretrained_policy.safetensors"
               / "2026-01-01T00.00.00.000Z")
    version.mkdir(parents=True)
    (version / "pretrained_policy.safetensors").write_bytes(b"not a policy file at all")
    return version / "pretrained_policy.safetensors"


# A project error raised in a worker process (Kedro's ParallelRunner and ours) or on a Dask
# worker reaches `kedro run` as itself: the same one line as under the sequential runner.
@pytest.mark.parametrize("runner", [None, "hindsight_rl.runners.ParallelRunner",
                                    "ParallelRunner", "hindsight_rl.runners.DaskRunner"])
def test_a_corrupted_pretrained_policy_names_the_file(tmp_path, runner):
    project = copy_project(tmp_path)
    path = _corrupted_pretrained_policy(project)
    result = _kedro_run(project, "--pipeline", "target",
                        *(["--runner", runner] if runner else []))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    claimed = int.from_bytes(path.read_bytes()[:8], "little")  # the "header length" it claims
    assert errors == [f"Error: {path}: not a hindsight-rl policy file (header of {claimed} "
                      "bytes: larger than the file or than 16777216 bytes)"]
    assert "Traceback" not in result.stderr + result.stdout


def test_dasks_closed_stream_traceback_at_shutdown_stays_out_of_the_log():
    """A failed DaskRunner run closes its cluster while a stream may still be sending; Dask
    logs that at INFO with a traceback (``distributed.batched``), which the project's
    logging keeps quiet, also after Dask sets up its own loggers on import."""
    code = ("import logging, logging.config, pathlib, yaml; logging.config.dictConfig("
            "yaml.safe_load(pathlib.Path('conf/logging.yml').read_text())); import distributed; "
            "log = logging.getLogger('distributed.batched'); "
            "print(log.isEnabledFor(logging.INFO), log.isEnabledFor(logging.WARNING))")
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True,
                            text=True, check=True)
    assert result.stdout.split() == ["False", "True"]


def test_load_versions_naming_a_version_that_does_not_exist_is_one_line(tmp_path):
    project = copy_project(tmp_path)
    saved = _corrupted_pretrained_policy(project).parent.name
    result = _kedro_run(project, "--pipeline", "target",
                        "--load-versions",
                        "sources.cartpole.pretrained_policy:2020-01-01T00.00.00.000Z")
    assert result.returncode == 1
    assert ("Error: --load-versions sources.cartpole.pretrained_policy:2020-01-01T00.00.00.000Z: "
            f"no such version of {project}/data/06_models/sources/cartpole/"
            f"pretrained_policy.safetensors; saved versions, newest first: {saved}"
            ) in result.stderr.replace("\n", "")
    assert "Traceback" not in result.stderr + result.stdout
    assert not (project / "data/08_reporting").exists(), "nothing ran, not even the manifest"


def test_load_versions_naming_no_dataset_is_one_line(tmp_path):
    result = _kedro_run(copy_project(tmp_path), "--pipeline", "target",
                        "--load-versions", "pretrained_polcy:2020-01-01T00.00.00.000Z")
    assert result.returncode == 1
    assert ("Error: 'load_versions' keys [pretrained_polcy] are not found in the catalog"
            in result.stderr.replace("\n", ""))
    assert "Traceback" not in result.stderr + result.stdout


def test_a_run_logs_its_work_not_each_load_and_save_and_ends_with_its_verdicts(tmp_path):
    project = copy_project(tmp_path)
    result = subprocess.run([sys.executable, "-m", "kedro", "run", "--env", "smoke"],
                            cwd=project, capture_output=True, text=True,
                            env={**os.environ, "DO_NOT_TRACK": "1", "COLUMNS": "250"})
    assert result.returncode == 0, result.stderr[-2000:]
    log = result.stdout + result.stderr
    assert "Using 'conf/logging.yml' as logging configuration" in log
    assert "Running node: evaluate" in log
    assert "Loading data from" not in log and "Saving data to" not in log  # conf/logging.yml
    assert "register_new_resolver" not in log  # upstream's deprecation (settings.py)
    summary = log[log.index("Pipeline execution completed"):]
    for target in ("mountaincar", "cartpole_long_pole"):
        assert f"  {target}: Transfer " in summary
