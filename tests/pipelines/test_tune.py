"""The hyperparameter search end to end on conf/smoke: two tiny trials on two workers, their
table, the best settings as a parameters file that Kedro loads as an override, and one
MLflow child run per trial."""

from __future__ import annotations

import json

import pandas as pd
import yaml
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession

from hindsight_rl.pipelines.branches import dag_shape, project_config
from tests.pipelines.conftest import latest, run_session

SEARCHED = ["learning_rate", "batch_size", "buffer_size", "gamma", "target_update_interval",
            "train_freq", "gradient_steps", "exploration_fraction", "exploration_final_eps",
            "n_step"]  # conf/base/parameters_tune.yml


def test_the_search_reports_its_trials_and_the_best_settings_as_parameters(project):
    names = {node.name for node in pipelines["tune"].nodes}
    assert {"tune.create_study", "tune.worker_0", "tune.worker_1", "tune.report",
            "tune.check_defaults", "tune.check_best", "tune.compare"} == names
    run_session(project, pipeline_name="tune")

    trials = pd.read_parquet(latest(project, "data/08_reporting/tune/trials.parquet"))
    assert sorted(trials["number"]) == [0, 1]
    assert set(trials["state"]) <= {"COMPLETE", "PRUNED"} and "COMPLETE" in set(trials["state"])
    assert {f"params_dqn.{key}" for key in SEARCHED} <= set(trials.columns)

    text = latest(project, "data/08_reporting/tune/best_parameters.yml").read_text()
    assert text.startswith("# Best of 2 trials")
    document = yaml.safe_load(text)
    tuned = document["targets"]["mountaincar"]["dqn"]
    assert list(document) == ["targets"] and list(tuned) == SEARCHED
    best = trials[trials["number"] == trials.loc[trials["value"].idxmin(), "number"]]
    assert tuned["learning_rate"] == best["params_dqn.learning_rate"].item()

    comparison = json.loads(latest(project, "data/08_reporting/tune/comparison.json")
                            .read_text())
    assert comparison["search"]["best_trial"] == best["number"].item()
    assert comparison["defaults"]["seeds"] == comparison["best"]["seeds"] == [1]
    assert comparison["defaults"]["settings"]["dqn.batch_size"] == 32  # conf/smoke's
    assert comparison["search"]["defaults_score"] == trials.loc[0, "value"], "trial 0"

    # Adopting it: copied into conf/local, Kedro merges it over conf/base and it validates.
    adopted = project / "conf/local/parameters_tuned.yml"
    adopted.write_text(text)
    try:
        with KedroSession.create(project_path=project) as session:
            parameters = session.load_context().params
    finally:
        adopted.unlink()
    config = project_config(parameters, dag_shape())
    assert config.targets["mountaincar"].dqn.model_dump(include=set(SEARCHED)) == tuned
    assert config.targets["mountaincar"].dqn.total_steps == 60_000, "the rest from conf/base"


def test_every_trial_is_an_mlflow_child_run_of_the_pipelines_run(project):
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{project.resolve().as_posix()}/mlruns.db")
    experiment = client.get_experiment_by_name("hindsight-rl")
    (parent,) = client.search_runs([experiment.experiment_id],  # "<pipeline> <version>"
                                   "attributes.run_name LIKE 'tune 20%'")
    children = client.search_runs([experiment.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(run.info.run_name for run in children) == ["trial 0", "trial 1"]
    for child in children:
        assert child.info.status == "FINISHED"
        assert set(child.data.params) == {f"dqn.{key}" for key in SEARCHED}
        assert child.data.tags["state"] in ("complete", "pruned")
        scores = client.get_metric_history(child.info.run_id, "score")
        assert [m.step for m in scores] == [200, 400, 500]  # smoke: a point every 200 steps
