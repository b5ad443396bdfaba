"""``hindsight_rl.mlflow_tracking``: the run grouping an Airflow DAG run's tasks is one, even
when two tasks start at once."""

import mlflow

from hindsight_rl.mlflow_tracking import DAG_ID_TAG, DAG_RUN_TAG, dag_run_parent

DAG, DAG_RUN = "hindsight-rl-retrain-local", "scheduled__2026-12-06T03:00:00+00:00"


class _RacingClient(mlflow.MlflowClient):
    """Another task's parent run appears between this task's search and its create_run."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.searches = 0

    def search_runs(self, *args, **kwargs):
        self.searches += 1
        return [] if self.searches == 1 else super().search_runs(*args, **kwargs)


def test_tasks_of_one_dag_run_share_one_parent_run(tmp_path):
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}")
    experiment = client.create_experiment("hindsight-rl", artifact_location=str(tmp_path / "a"))
    first = dag_run_parent(client, experiment, DAG, DAG_RUN)
    run = client.get_run(first)
    assert run.info.run_name == f"{DAG} {DAG_RUN}"
    assert (run.data.tags[DAG_ID_TAG], run.data.tags[DAG_RUN_TAG]) == (DAG, DAG_RUN)
    assert dag_run_parent(client, experiment, DAG, DAG_RUN) == first
    assert dag_run_parent(client, experiment, DAG, "manual__other") != first

    racing = _RacingClient(f"sqlite:///{tmp_path / 'mlruns.db'}")
    assert dag_run_parent(racing, experiment, DAG, DAG_RUN) == first
    parents = client.search_runs([experiment], f"tags.`{DAG_RUN_TAG}` = '{DAG_RUN}'")
    assert [parent.info.run_id for parent in parents] == [first], "its own one is deleted"
