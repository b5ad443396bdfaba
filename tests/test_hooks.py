"""The project's hooks. MlflowTrackingHook: with the ``mlflow`` extra a run records
parameters, learning curves and policy files in the project's sqlite store; without an MLflow
run it does nothing. ValidateParametersHook checks what nodes read against their parameters;
RunManifestHook pins a run's inputs."""

from __future__ import annotations

import hashlib
import json
import pickle  # a parallel runner sends the catalog to its workers pickled
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from types import SimpleNamespace

import mlflow  # the test extra installs the mlflow extra (kedro-mlflow registers itself)
import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog
from kedro.io.core import Version
from kedro.pipeline import Node, Pipeline
from mlflow.entities import Run

from hindsight_rl.core.config import CollectConfig, EnvConfig, SourceConfig
from hindsight_rl.core.policy_file import NumpyPolicy
from hindsight_rl.core.rollouts import collect_rollouts, trajectory_attrs
from hindsight_rl.core.trajectories import TrajectoryTableError, to_table
from hindsight_rl.datasets import (
    AtomicJSONDataset,
    AtomicTextDataset,
    PolicyFileDataset,
    TrajectoryDataset,
)
from hindsight_rl.hooks import MlflowTrackingHook, RunManifestHook, ValidateParametersHook
from tests.pipelines import conftest as pipelines
from tests.pipelines.conftest import run_session, versions

project = pipelines.project  # the pipeline tests' fixture: a project copy as working dir

HISTORY = pd.DataFrame({"env_step": [200, 400], "metric": ["eval_return"] * 2,
                        "value": [-200.0, -180.0]})
RUN_PARAMS = {"run_id": "2026-12-05T13.45.12.345Z", "pipeline_names": ["__default__"]}
POLICY_FILES = {"mountaincar.seed_1.finetuned_policy":
                    "data/06_models/mountaincar/seed_1/finetuned_policy.safetensors",
                "cartpole_long_pole.seed_0.scratch_policy":
                    "data/06_models/cartpole_long_pole/seed_0/scratch_policy.safetensors"}
PRETRAINED = "data/06_models/sources/cartpole/pretrained_policy.safetensors"


class _NoClient:
    def __init__(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("nothing may be logged without an active MLflow run")


@pytest.mark.parametrize("mlflow_imported", [False, True])
def test_without_an_mlflow_run_the_hook_does_nothing(monkeypatch, tmp_path, mlflow_imported):
    if mlflow_imported:
        import mlflow  # the test extra installs the mlflow extra
        assert mlflow.active_run() is None
        monkeypatch.setattr(mlflow, "MlflowClient", _NoClient)
    else:
        monkeypatch.delitem(sys.modules, "mlflow", raising=False)
    catalog = DataCatalog({"policy": PolicyFileDataset(filepath=str(tmp_path / "p.safetensors"))})
    hook = MlflowTrackingHook()
    hook.before_pipeline_run(run_params=RUN_PARAMS, catalog=catalog)
    hook.after_dataset_saved(dataset_name="mountaincar.seed_0.finetune_history", data=HISTORY)
    hook.after_dataset_saved(dataset_name="mountaincar.transfer_metrics", data={"auc": 1.0})
    hook.after_dataset_saved(dataset_name="policy", data=object())
    hook.after_pipeline_run()
    assert ("mlflow" in sys.modules) == mlflow_imported, "the hook must never import mlflow"


@pytest.mark.parametrize("opened_by_user", [False, True])
def test_the_session_leaves_only_a_run_the_user_opened(monkeypatch, tmp_path, opened_by_user):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlruns.db'}")
    hook, context = MlflowTrackingHook(), SimpleNamespace(project_path=tmp_path)
    outer = mlflow.start_run() if opened_by_user else None
    hook.after_context_created(context=context)
    run = outer or mlflow.start_run()  # kedro-mlflow's before_pipeline_run
    if not opened_by_user:
        mlflow.start_run(run_id=run.info.run_id, nested=True)  # re-entered before a node
    hook.before_pipeline_run(run_params=RUN_PARAMS, catalog=DataCatalog())
    if not opened_by_user:
        mlflow.end_run()  # kedro-mlflow's after_pipeline_run ends it once
    hook.after_pipeline_run()
    active = mlflow.active_run()
    assert (active.info.run_id if active else None) == (run.info.run_id if outer else None)
    mlflow.end_run()


def test_the_project_does_not_import_mlflow():
    code = "import sys, hindsight_rl.settings; print('mlflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


def _only_version(project: Path, relative: str) -> Path:
    (version,) = versions(project, relative)
    return next(path for path in version.iterdir() if path.is_file())


def _manifests(project: Path) -> list[dict]:
    return [json.loads(_file_in(version).read_text())
            for version in versions(project, "data/08_reporting/run_manifest.json")]


def _file_in(version: Path) -> Path:
    (file,) = version.iterdir()
    return file


def _tracked_run(project: Path, name: str) -> tuple[mlflow.MlflowClient, Run]:
    client = mlflow.MlflowClient(f"sqlite:///{project.resolve().as_posix()}/mlruns.db")
    experiment = client.get_experiment_by_name("hindsight-rl")
    (run,) = client.search_runs([experiment.experiment_id], f"attributes.run_name = '{name}'")
    return client, run


def _artifact_files(client: mlflow.MlflowClient, run_id: str, path: str
                    ) -> Iterator[tuple[str, bytes]]:
    for entry in client.list_artifacts(run_id, path):
        if entry.is_dir:
            yield from _artifact_files(client, run_id, entry.path)
        else:
            local = Path(client.download_artifacts(run_id, entry.path))
            yield entry.path, local.read_bytes()


@pytest.mark.pipeline
def test_a_run_logs_parameters_learning_curves_reports_and_policies(project, tmp_path):
    run_session(project)
    assert mlflow.active_run() is None, "the run ends with the session (the next one is new)"

    store = f"sqlite:///{project.resolve().as_posix()}/mlruns.db"
    assert mlflow.get_tracking_uri() == store, "conf/base/mlflow.yml, anchored at the project"
    (manifest,) = _manifests(project)
    client, run = _tracked_run(project, f"__default__ {manifest['saved_version']}")
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.artifact_location == (project.resolve() / "mlartifacts").as_uri()
    assert run.info.status == "FINISHED"

    # Parameters: every setting flattened (nodes get typed configs); conf/smoke's values.
    assert run.data.params["sources.cartpole.dqn.total_steps"] == "600"
    assert run.data.params["targets.mountaincar.dqn.n_step"] == "5"

    # Learning curves: one metric per history and curve, stepped by env step.
    history = pd.read_parquet(_only_version(
        project, "data/07_model_output/mountaincar/seed_0/finetune_history.parquet"))
    expected = history[history["metric"] == "eval_return"]
    curve = client.get_metric_history(run.info.run_id,
                                      "mountaincar.seed_0.finetune_history/eval_return")
    assert len(curve) >= 2
    assert sorted((m.step, m.value) for m in curve) == sorted(
        zip(expected["env_step"], expected["value"], strict=True))
    assert run.data.metrics["mountaincar.transfer_metrics/arms.finetuned.seeds"] == 3.0

    # Every file saved under 08_reporting (plots, reports, metrics, the run manifest), byte
    # for byte, under reporting/<dataset>/.
    reporting = project / "data" / "08_reporting"
    saved = sorted((path.name, path.read_bytes()) for path in reporting.rglob("*")
                   if path.is_file())
    logged = dict(_artifact_files(client, run.info.run_id, "reporting"))
    assert sorted((PurePosixPath(path).name, data) for path, data in logged.items()) == saved
    assert len(saved) >= 9
    assert "reporting/mountaincar.learning_curves/learning_curves.png" in logged
    assert "reporting/cartpole_long_pole.transfer_report_html/transfer_report.html" in logged

    # Policies of the seeds: their files, byte for byte.
    for name, path in POLICY_FILES.items():
        file = _only_version(project, path)
        logged_file = client.download_artifacts(run.info.run_id, f"policies/{name}/{file.name}",
                                                str(tmp_path))
        assert Path(logged_file).read_bytes() == file.read_bytes(), name

    # The pretrained policy: a pyfunc model that plays as the numpy player does.
    (model,) = client.search_logged_models(
        [run.info.experiment_id], filter_string="name = 'sources-cartpole-pretrained_policy'")
    assert model.source_run_id == run.info.run_id
    policy = NumpyPolicy(_only_version(project, PRETRAINED).read_bytes())
    observations = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    predicted = mlflow.pyfunc.load_model(model.model_uri).predict(observations)
    assert predicted["action"].tolist() == [policy.act(obs) for obs in observations]
    np.testing.assert_allclose(predicted["q_values"], policy.q_values(observations), rtol=1e-6)


@pytest.mark.pipeline
def test_retraining_registers_the_champion_with_its_decision(project):
    """After the default run above: two retrain runs. The registry holds a version per
    promotion, and the ``champion`` alias points at the latest champion file's version."""
    for _ in range(2):
        run_session(project, pipeline_names=["retrain"])
    promotions = [json.loads(_file_in(version).read_text()) for version
                  in versions(project, "data/08_reporting/mountaincar/promotion.json")]
    assert promotions[0]["promoted"], "the first champion"
    champion_file = _file_in(versions(
        project, "data/06_models/mountaincar/champion_policy.safetensors")[-1])

    client = mlflow.MlflowClient(f"sqlite:///{project.resolve().as_posix()}/mlruns.db")
    name = "hindsight-rl-mountaincar"
    registered = client.search_model_versions(f"name = '{name}'")
    assert len(registered) == sum(promotion["promoted"] for promotion in promotions)
    champion = client.get_model_version_by_alias(name, "champion")
    assert champion.tags["sha256"] == hashlib.sha256(champion_file.read_bytes()).hexdigest()
    promoting = [p for p in promotions if p["promoted"]][-1]
    assert champion.tags["promoted"] == "True"
    assert champion.tags["challenger_mean"] == str(promoting["challenger_mean"])
    assert champion.tags["reason"] == promoting["reason"]
    assert champion.tags["run_version"] in {
        m["saved_version"] for m in _manifests(project)
        if m["run_params"]["pipeline_names"] == ["retrain"]}

    policy = NumpyPolicy(champion_file.read_bytes())
    observations = np.random.default_rng(1).normal(size=(8, 2)).astype(np.float32)
    predicted = mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(observations)
    assert predicted["action"].tolist() == [policy.act(obs) for obs in observations]


# --- ValidateParametersHook: what a node reads fits the env its parameters name -----------

def _mountaincar_rollouts() -> pd.DataFrame:
    env = EnvConfig(id="MountainCar-v0")
    table = to_table(collect_rollouts(env, 10, lambda obs: 0, seed=0))
    table.attrs = trajectory_attrs(env, CollectConfig(steps=10), behaviour_sha256=None)
    return table


def test_a_node_never_trains_on_a_table_from_another_env(tmp_path):
    catalog = DataCatalog({"source_rollouts": TrajectoryDataset(
        filepath=str(tmp_path / "r.parquet"), version=Version(None, "2026-01-01T00.00.00.000Z"))})
    catalog.save("source_rollouts", _mountaincar_rollouts())
    source = SourceConfig(env=EnvConfig(id="CartPole-v1"))
    inputs = {"source_rollouts": catalog.load("source_rollouts"), "params:source": source}
    with pytest.raises(TrajectoryTableError, match=(
            r"^source_rollouts \(.*r.parquet/2026-01-01T00.00.00.000Z/r.parquet\): was collected "
            r"with env_id 'MountainCar-v0', but the node's env has 'CartPole-v1'")):
        ValidateParametersHook().before_node_run(node=None, catalog=catalog, inputs=inputs)
    matching = {**inputs, "params:source": SourceConfig(env=EnvConfig(id="MountainCar-v0"))}
    ValidateParametersHook().before_node_run(node=None, catalog=catalog, inputs=matching)


# --- RunManifestHook: a run's inputs are pinned when it starts ----------------------------

def test_inputs_stay_pinned_when_another_run_writes_a_newer_version(tmp_path):
    """Pinned in the dataset's Version, not in a cache: a released dataset, or one sent to a
    worker process, still loads the version that was latest when the run started."""
    def report(version: Version) -> AtomicTextDataset:
        return AtomicTextDataset(filepath=str(tmp_path / "report.md"), version=version)

    report(Version(None, "2026-01-01T00.00.00.000Z")).save("before the run")
    run = Version(None, "2026-01-02T00.00.00.000Z")
    catalog = DataCatalog({"report": report(run), "run_manifest": AtomicJSONDataset(
        filepath=str(tmp_path / "manifest.json"), version=run)})
    pipeline = Pipeline([Node(len, "report", "length", name="read_report")])
    RunManifestHook().before_pipeline_run(run_params={}, pipeline=pipeline, catalog=catalog)
    report(Version(None, "2026-01-03T00.00.00.000Z")).save("another run's, written meanwhile")
    dataset = catalog.get("report")
    dataset._release()  # what a runner does once nothing else needs it
    in_a_worker = pickle.loads(pickle.dumps(dataset))
    assert in_a_worker.load() == "before the run"
