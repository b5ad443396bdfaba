"""The default pipeline end to end on tiny budgets."""

from __future__ import annotations

import itertools
import json

import pandas as pd
import pytest
from kedro.framework.project import pipelines
from PIL import Image, ImageSequence

from hindsight_rl.core.config import ConfigError
from hindsight_rl.core.policy_file import NumpyPolicy
from hindsight_rl.play import main as play
from hindsight_rl.runners import ParallelRunner
from tests.conftest import copy_project
from tests.pipelines.conftest import dag_shape, run_session, versions

TARGETS = ("mountaincar", "cartpole_long_pole")
POLICY = "data/06_models/sources/cartpole/pretrained_policy.safetensors"
SEEDS = (0, 1, 2)  # DAG_SHAPE in settings
VERSIONED = ["data/01_raw/sources/cartpole/source_rollouts.parquet",
             "data/06_models/sources/cartpole/pretrained_policy.safetensors",
             "data/07_model_output/sources/cartpole/pretrain_history.parquet",
             "data/08_reporting/run_manifest.json"] + [
    f"data/{path}" for target in TARGETS for path in (
        f"03_primary/{target}/hindsight_dataset.parquet",
        f"03_primary/{target}/transfer_plan.json",
        f"06_models/{target}/source_policy.safetensors",
        f"08_reporting/{target}/transfer_metrics.json",
        f"08_reporting/{target}/learning_curves.png",
        f"08_reporting/{target}/hindsight_returns.png",
        f"08_reporting/{target}/transfer_report.md",
        f"08_reporting/{target}/transfer_report.html")] + [
    f"data/{path}" for target in TARGETS for seed in SEEDS for path in (
        f"06_models/{target}/seed_{seed}/finetuned_policy.safetensors",
        f"06_models/{target}/seed_{seed}/scratch_policy.safetensors",
        f"07_model_output/{target}/seed_{seed}/finetune_history.parquet",
        f"07_model_output/{target}/seed_{seed}/scratch_history.parquet",
        f"08_reporting/{target}/seed_{seed}/finetuned_episode.gif",
        f"08_reporting/{target}/seed_{seed}/scratch_episode.gif")]


@pytest.fixture(scope="module")
def two_runs(project):
    run_session(project)
    first = {path: versions(project, path)[0] for path in VERSIONED}
    snapshot = {path: sorted(p.read_bytes() for p in folder.rglob("*") if p.is_file())
                for path, folder in first.items()}
    run_session(project)
    return project, first, snapshot


def test_registered_pipelines_and_node_names(project):
    assert {"source", "target", "finetune", "evaluate", "retrain", "ablation",
            "__default__"} <= set(pipelines)
    names = {node.name for node in pipelines["__default__"].nodes}
    assert {f"sources.cartpole.{node}" for node in ("collect_source_rollouts", "pretrain",
                                                     "export_weights")} <= names
    for target in TARGETS:
        assert {f"{target}.plan_transfer", f"{target}.evaluate"} <= names
        assert {f"{target}.seeds_0_1_2.{stage}" for stage in ("finetune", "train_scratch")} \
            <= names  # the seeds of an arm in one node: seeds_per_node is None
    assert len(names) == 3 + len(TARGETS) * (2 + 2)


def test_every_artefact_gets_a_new_version_and_the_first_stays_intact(two_runs):
    project, first, snapshot = two_runs
    for path in VERSIONED:
        saved = versions(project, path)
        assert len(saved) == 2, path
        assert sorted(p.read_bytes() for p in first[path].rglob("*") if p.is_file()) \
            == snapshot[path], path


def test_runs_reproduce_datasets_and_weights(two_runs):
    project, _, _ = two_runs
    for path in ("data/03_primary/mountaincar/hindsight_dataset.parquet",
                 "data/06_models/sources/cartpole/pretrained_policy.safetensors",
                 "data/06_models/cartpole_long_pole/seed_1/finetuned_policy.safetensors",
                 "data/08_reporting/mountaincar/seed_2/scratch_episode.gif"):
        first, second = versions(project, path)
        assert [p.read_bytes() for p in sorted(first.rglob("*.*"))] == \
               [p.read_bytes() for p in sorted(second.rglob("*.*"))], path


def test_one_node_per_seed_in_parallel_processes_gives_the_same_weights(two_runs, tmp_path):
    project, first, _ = two_runs
    alone = copy_project(tmp_path)
    with pytest.MonkeyPatch.context() as patch, dag_shape(alone, seeds_per_node=1):
        patch.chdir(alone)
        names = {node.name for node in pipelines["__default__"].nodes}
        assert {f"{target}.seed_{seed}.{stage}" for target in TARGETS for seed in SEEDS
                for stage in ("finetune", "train_scratch")} <= names
        run_session(alone, runner=ParallelRunner())
    for target in TARGETS:
        for seed in SEEDS:
            for arm in ("finetuned", "scratch"):
                path = f"data/06_models/{target}/seed_{seed}/{arm}_policy.safetensors"
                (grouped,) = first[path].glob("*.safetensors")
                (single,) = versions(alone, path)[0].glob("*.safetensors")
                assert grouped.read_bytes() == single.read_bytes(), path


@pytest.mark.parametrize(("params", "message"), [
    ({"runtime": {"seeds_per_node": 1}}, "runtime.seeds_per_node: the grouping of seeds"),
    ({"targets": {"mountaincar": {"seeds": [0]}}}, "targets.mountaincar.seeds: seeds are the"),
    ({"targets": {"acrobot": {"env": {"id": "Acrobot-v1"}}}},
     "targets.acrobot: the DAG has no branch for this target")])
def test_parameters_change_values_never_the_dags_shape(project, params, message):
    with pytest.raises(ConfigError, match=message):
        run_session(project, runtime_params=params)


def test_hindsight_dataset_follows_the_contract(two_runs):
    project, first, _ = two_runs
    table = pd.read_parquet(next(first["data/03_primary/mountaincar/hindsight_dataset.parquet"]
                                 .glob("*.parquet")))
    expected = ["episode_id", "t", "obs_0", "obs_1", "action", "reward", "next_obs_0",
                "next_obs_1", "terminated", "truncated", "goal_0", "return_to_go",
                "episode_return", "success"]
    assert list(table.columns[:len(expected)]) == expected
    assert (table["goal_0"] == 0.5).all()  # relabelling is off by default (her.k: 0)
    assert table.attrs["env_id"] == "MountainCar-v0" and table.attrs["seed"] == 100
    assert table.attrs["behaviour_policy"] == "boltzmann" and table.attrs["behaviour_sha256"]


def test_policies_play_from_their_files_alone(two_runs):
    project, first, _ = two_runs
    for seed in SEEDS:
        (path,) = first[f"data/06_models/mountaincar/seed_{seed}/finetuned_policy.safetensors"
                        ].glob("*.safetensors")
        policy = NumpyPolicy(path.read_bytes())
        assert policy.document["env"]["id"] == "MountainCar-v0"
        assert policy.document["goal"]["desired"] == [0.5]
        assert policy.document["provenance"]["parent_sha256"]
        assert policy.act([-0.5, 0.0]) in (0, 1, 2)


def test_metrics_compare_both_arms(two_runs):
    project, first, _ = two_runs
    metrics = json.loads(next(first["data/08_reporting/mountaincar/transfer_metrics.json"]
                              .glob("*.json")).read_text())
    assert set(metrics["arms"]) == {"finetuned", "scratch"}
    assert metrics["reward_threshold"] == -110.0 and metrics["eval_episodes"] == 3
    for arm in metrics["arms"].values():
        assert arm["seeds"] == len(SEEDS) and len(arm["per_seed"]) == len(SEEDS)
        assert arm["final_return"]["ci"][0] <= arm["final_return"]["iqm"]
    assert metrics["verdict"].startswith("Transfer ")


def test_each_final_policy_is_recorded_and_shown_in_the_html_report(two_runs):
    project, first, _ = two_runs
    for target in TARGETS:
        for seed in SEEDS:
            for arm in ("finetuned", "scratch"):
                gif = next(first[f"data/08_reporting/{target}/seed_{seed}/{arm}_episode.gif"]
                           .glob("*.gif"))
                # conf/smoke's gif_frames: the reset's frame and 9 steps at 30 fps (GIF keeps
                # hundredths of a second; equal frames in a row become one longer frame)
                assert _gif_milliseconds_and_width(gif) == (10 * 30, 300)
        page = next(first[f"data/08_reporting/{target}/transfer_report.html"].glob("*.html")
                    ).read_text()
        assert page.count('src="data:image/gif;base64,R0lGOD') == 2 * len(SEEDS)
        assert "seed_0 finetuned: return " in page and "the GIF shows its first 9 steps" in page


def test_play_finds_a_policy_by_its_catalog_name(two_runs, capsys):
    project, first, _ = two_runs
    assert play(["mountaincar.seed_1.scratch_policy", "--env", "smoke", "--episodes", "1"]) == 0
    latest = versions(project, "data/06_models/mountaincar/seed_1/scratch_policy.safetensors")[-1]
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["file"] == str(
        latest / "scratch_policy.safetensors")
    assert play(["mountaincar.transfer_metrics", "--env", "smoke"]) == 1
    assert capsys.readouterr().err.strip().endswith(
        "mountaincar.transfer_metrics: not a policy dataset of this project's catalog "
        "(AtomicJSONDataset)")


def _gif_milliseconds_and_width(path) -> tuple[int, int]:
    with Image.open(path) as image:
        return sum(frame.info["duration"] for frame in ImageSequence.Iterator(image)), image.width


def test_finetune_from_a_pinned_pretrained_version(two_runs):
    project, first, _ = two_runs
    pinned = first["data/06_models/sources/cartpole/pretrained_policy.safetensors"].name
    run_session(project, pipeline_names=["target", "finetune"],
                load_versions={"sources.cartpole.pretrained_policy": pinned})
    hindsight = versions(project, "data/03_primary/mountaincar/hindsight_dataset.parquet")
    assert len(hindsight) == 3
    assert len(versions(project, POLICY)) == 2
    manifest = json.loads(next(versions(project, "data/08_reporting/run_manifest.json")[-1]
                               .glob("*.json")).read_text())
    assert manifest["status"] == "completed"
    assert manifest["loaded_versions"] == {"sources.cartpole.pretrained_policy": pinned}
    assert manifest["saved_version"] == hindsight[-1].name
    assert "mountaincar.seeds_0_1_2.finetune" in manifest["nodes"]


def test_a_hindsight_dataset_of_other_settings_gives_no_verdict(two_runs):
    project, _, _ = two_runs
    other = {"targets": {"cartpole_long_pole": {"collect": {"steps": 300}}}}
    run_session(project, runtime_params=other, pipeline_names=["target"],
                namespaces=["cartpole_long_pole"])
    run_session(project, pipeline_names=["finetune", "evaluate"],
                namespaces=["cartpole_long_pole"])
    metrics = json.loads(next(versions(
        project, "data/08_reporting/cartpole_long_pole/transfer_metrics.json")[-1]
        .glob("*.json")).read_text())
    assert metrics["comparable"] is False
    assert metrics["verdict"].startswith("Not comparable, no verdict: the hindsight dataset "
                                         "holds 300 env steps but the scratch arm's warm "
                                         "start 200")


def test_kedro_runs_lists_every_run_newest_first_with_its_verdicts(two_runs, caplog):
    from click.testing import CliRunner

    from hindsight_rl.cli import cli
    from hindsight_rl.datasets import AtomicJSONDataset
    from hindsight_rl.hooks import _log_run_summary

    project, first, _ = two_runs
    result = CliRunner().invoke(cli, ["runs", "--data", str(project / "data")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    runs = [line for line in lines if not line.startswith("  ")]
    assert len(runs) >= 2 and runs == sorted(runs, reverse=True)
    version = first["data/08_reporting/run_manifest.json"].name
    start = next(i for i, line in enumerate(lines) if line.startswith(version))
    block = [lines[start], *itertools.takewhile(lambda line: line.startswith("  "),
                                                lines[start + 1:])]
    assert block[0] == f"{version}  completed  pipelines __default__  env smoke"
    assert len(block) == 1 + len(TARGETS)
    for target in TARGETS:
        line = next(line for line in block if line.startswith(f"  {target}: "))
        assert line.startswith(f"  {target}: Transfer ")
        assert line.endswith(f"{target}/transfer_report.md/{version}/transfer_report.md)")
    # Every `kedro run` ends with the same lines for itself.
    manifest = AtomicJSONDataset(filepath=str(project / "data/08_reporting/run_manifest.json"))
    with caplog.at_level("INFO", logger="hindsight_rl.hooks"):
        _log_run_summary(manifest, version)
    assert [record.getMessage() for record in caplog.records] == block
