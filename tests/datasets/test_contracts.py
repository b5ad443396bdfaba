"""Histories and metrics JSON are checked on save and load; every dataset loads the version
its own run wrote; project errors pass Kedro and process boundaries as themselves."""

import json
import pickle  # a worker's error reaches the runner pickled: the test does the same

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog
from kedro.io.core import DatasetError, Version

from hindsight_rl.core import dqn
from hindsight_rl.core.artefacts import HISTORY_METRICS
from hindsight_rl.core.errors import HindsightRLError
from hindsight_rl.datasets import (
    AblationRunDataset,
    ArtefactError,
    AtomicJSONDataset,
    AtomicTextDataset,
    HistoryDataset,
)

OLD, OURS, OTHERS = ("2026-01-01T00.00.00.000Z", "2026-01-02T00.00.00.000Z",
                     "2026-01-03T00.00.00.000Z")


def _history() -> pd.DataFrame:
    return pd.DataFrame({"env_step": np.array([200, 200, 400], np.int64),
                         "metric": ["eval_return", "loss", "eval_return"],
                         "value": [-200.0, 0.5, -180.0], "seed": np.array([0, 0, 0], np.int64)})


def test_the_history_contract_is_what_training_records():
    assert set(HISTORY_METRICS) == set(dqn.History.METRICS)


BROKEN_HISTORIES = {
    "renamed column": (lambda t: t.rename(columns={"value": "return"}),
                       r"expected \['env_step', 'metric', 'value', 'seed'\] \(missing \['value'\]"),
    "NaN value": (lambda t: t.assign(value=[-200.0, np.nan, -180.0]),
                  r"non-finite value at row 1 \('loss' at env step 200\)"),
    "unknown metric": (lambda t: t.assign(metric=["eval_return", "los", "eval_return"]),
                       "unknown metric 'los' at row 1; expected one of"),
    "float env steps": (lambda t: t.assign(env_step=[200.0, 200.0, 400.5]),
                        "column 'env_step' has dtype float64, expected integer"),
    "negative seed": (lambda t: t.assign(seed=np.array([0, -1, 0], np.int64)),
                      "column 'seed' has a negative value at row 1"),
    "no learning curve": (lambda t: t[t["metric"] == "loss"],
                          "no 'eval_return' rows"),
}


@pytest.mark.parametrize("case", BROKEN_HISTORIES)
def test_a_broken_history_fails_on_load_naming_the_file(tmp_path, case):
    damage, problem = BROKEN_HISTORIES[case]
    path = tmp_path / "finetune_history.parquet"
    damage(_history()).to_parquet(path)  # written behind the dataset's back
    with pytest.raises(ArtefactError, match=problem) as error:
        HistoryDataset(filepath=str(path)).load()
    assert str(error.value).startswith(f"{path}: ")


@pytest.mark.parametrize("case", BROKEN_HISTORIES)
def test_a_broken_history_is_never_written(tmp_path, case):
    damage, problem = BROKEN_HISTORIES[case]
    with pytest.raises(ArtefactError, match=problem):
        HistoryDataset(filepath=str(tmp_path / "h.parquet")).save(damage(_history()))
    assert not list(tmp_path.iterdir())


def test_an_ablation_run_has_judging_rows_and_its_arm(tmp_path):
    run = pd.concat([_history(), pd.DataFrame({"env_step": np.array([400], np.int64),
                                               "metric": ["judge_return"], "value": [-150.0],
                                               "seed": np.array([0], np.int64)})])
    dataset = AblationRunDataset(filepath=str(tmp_path / "seed_0.parquet"))
    dataset.save(run.assign(arm="frozen"))
    assert dataset.load()["metric"].tolist()[-1] == "judge_return"
    with pytest.raises(ArtefactError, match="missing \\['arm'\\]"):
        AblationRunDataset(filepath=str(tmp_path / "other.parquet")).save(run)
    with pytest.raises(ArtefactError, match="unknown metric 'judge_return'"):
        HistoryDataset(filepath=str(tmp_path / "h.parquet")).save(run)


METRICS = {"env_id": "MountainCar-v0", "reward_threshold": -110.0,
           "arms": {"finetuned": {"auc": -150.0, "steps_to_threshold": None}},
           "verdict": "no clear difference"}
REQUIRED = ["env_id", "reward_threshold", "arms", "verdict"]


def _metrics_dataset(path) -> AtomicJSONDataset:
    return AtomicJSONDataset(filepath=str(path), required_keys=REQUIRED)


def test_metrics_round_trip(tmp_path):
    dataset = _metrics_dataset(tmp_path / "m.json")
    dataset.save(METRICS)
    assert dataset.load() == METRICS


BROKEN_METRICS = {
    "NaN": ('{"env_id": "x", "reward_threshold": NaN, "arms": {}, "verdict": "v"}',
            "holds NaN, which is not a JSON number"),
    "missing verdict": (json.dumps({k: v for k, v in METRICS.items() if k != "verdict"}),
                        r"missing keys \['verdict'\]"),
    "not an object": ("[1, 2]", "expected a JSON object with keys"),
    "cut short": (json.dumps(METRICS)[:40], "not valid JSON"),
    "nested too deeply": ('{"arms": ' + "[" * 100_000 + "]" * 100_000 + "}",
                          "nested too deeply"),
}


@pytest.mark.parametrize("case", BROKEN_METRICS)
def test_a_broken_metrics_file_fails_on_load_naming_the_file(tmp_path, case):
    text, problem = BROKEN_METRICS[case]
    path = tmp_path / "transfer_metrics.json"
    path.write_text(text)
    with pytest.raises(ArtefactError, match=problem) as error:
        _metrics_dataset(path).load()
    assert str(error.value).startswith(f"{path}: ")


def test_non_finite_metrics_are_never_written(tmp_path):
    with pytest.raises(ArtefactError, match="non-finite number nan"):
        _metrics_dataset(tmp_path / "m.json").save({**METRICS, "reward_threshold": np.nan})
    assert not list(tmp_path.iterdir())


def _versioned(path, load=None, save=None) -> AtomicTextDataset:
    return AtomicTextDataset(filepath=str(path), version=Version(load, save))


def test_a_run_loads_the_version_it_saved_not_a_newer_one(tmp_path):
    path = tmp_path / "report.md"
    _versioned(path, save=OLD).save("an earlier run's")
    ours = _versioned(path, save=OURS)
    assert ours.load() == "an earlier run's", "before saving, the latest version is loaded"
    ours.save("this run's")
    _versioned(path, save=OTHERS).save("another run's, saved meanwhile")
    assert ours.load() == "this run's"
    assert _versioned(path, save=OTHERS).load() == "another run's, saved meanwhile"
    assert _versioned(path, load=OLD, save=OURS).load() == "an earlier run's", \
        "a pinned version wins"


def test_a_project_error_reaches_a_parallel_runner_as_itself(tmp_path):
    """Kedro's catalog wraps a dataset's error in a new DatasetError, and pickling (a worker
    sending it back) would drop the cause that says it is ours."""
    path = tmp_path / "h.parquet"
    _history().rename(columns={"value": "return"}).to_parquet(path)
    catalog = DataCatalog({"history": HistoryDataset(filepath=str(path))})
    with pytest.raises(DatasetError) as raised:
        catalog.load("history")
    assert type(raised.value) is DatasetError and str(raised.value).startswith("history: ")
    returned = pickle.loads(pickle.dumps(raised.value))  # as a runner receives it
    assert isinstance(returned, HindsightRLError) and isinstance(returned, DatasetError)
    assert str(returned).startswith(f"{path}: columns are")
    bug = pickle.loads(pickle.dumps(DatasetError("a bug, not bad input")))
    assert type(bug) is DatasetError and str(bug) == "a bug, not bad input"
