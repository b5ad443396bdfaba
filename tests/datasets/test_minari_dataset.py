"""MinariDataset: a trajectory table as a Minari dataset, through Kedro's catalog."""

import minari
import pandas as pd
import pytest
from kedro.io import DataCatalog
from kedro.io.core import DatasetError

from hindsight_rl.core.config import EnvConfig
from hindsight_rl.core.errors import HindsightRLError
from hindsight_rl.datasets import MinariDataset
from tests.conftest import hindsight_table


@pytest.fixture
def table() -> pd.DataFrame:
    return hindsight_table(EnvConfig(id="CartPole-v1", success="truncated"), 60)


def test_a_catalog_entry_saves_a_table_minari_loads_and_loads_it_back(tmp_path, table):
    catalog = DataCatalog.from_config({"rollouts": {
        "type": "hindsight_rl.datasets.MinariDataset", "datasets_path": str(tmp_path),
        "dataset_id": "hindsight-rl/cartpole-v0", "save_args": {"author": "me"}}})
    assert not catalog.exists("rollouts")
    catalog.save("rollouts", table)
    assert catalog.exists("rollouts")
    pd.testing.assert_frame_equal(catalog.load("rollouts"), table)
    written = minari.MinariDataset(tmp_path / "hindsight-rl" / "cartpole-v0" / "data")
    assert written.total_steps == 60 and written.storage.metadata["author"] == {"me"}


def test_an_existing_dataset_is_never_replaced_unless_overwrite_is_set(tmp_path, table):
    MinariDataset(datasets_path=str(tmp_path), dataset_id="x-v0").save(table)
    with pytest.raises(DatasetError, match="exists already .*overwrite: false"):
        MinariDataset(datasets_path=str(tmp_path), dataset_id="x-v0").save(table.iloc[:10])
    replacing = MinariDataset(datasets_path=str(tmp_path), dataset_id="x-v0", overwrite=True)
    shorter = hindsight_table(EnvConfig(id="CartPole-v1", success="truncated"), 10)
    replacing.save(shorter)
    pd.testing.assert_frame_equal(replacing.load(), shorter)


def test_a_missing_dataset_fails_on_load_as_a_project_error_naming_it(tmp_path):
    with pytest.raises(DatasetError, match="Minari dataset x-v0 in .*: no such dataset") as error:
        MinariDataset(datasets_path=str(tmp_path), dataset_id="x-v0").load()
    assert isinstance(error.value, HindsightRLError)  # `kedro run` prints it as one line


@pytest.mark.parametrize(("arguments", "problem"), [
    ({"dataset_id": "no-version"}, "dataset_id: got 'no-version', expected Minari's form"),
    ({"dataset_id": "x-v0", "save_args": {"data_formt": "hdf5"}},
     r"save_args: unknown arguments \['data_formt'\]"),
    ({"dataset_id": "x-v0", "datasets_path": "s3://bucket/minari"},
     "datasets_path: got 's3://bucket/minari'; Minari reads and writes local folders only"),
])
def test_a_bad_entry_is_refused_when_the_dataset_is_made(tmp_path, arguments, problem):
    with pytest.raises(HindsightRLError, match=problem):
        MinariDataset(**{"datasets_path": str(tmp_path), **arguments})
