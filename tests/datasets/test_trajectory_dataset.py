import pandas as pd
import pytest
from kedro.io.core import DatasetError, Version

from hindsight_rl.core.rollouts import collect_rollouts
from hindsight_rl.core.trajectories import to_table
from hindsight_rl.datasets import TrajectoryDataset


@pytest.fixture
def table(corridor) -> pd.DataFrame:
    return to_table(collect_rollouts(corridor, 8, lambda obs: 1, seed=0))


def test_round_trip_keeps_rows_and_metadata(tmp_path, table):
    table.attrs = {"env_id": "Corridor-v0"}
    TrajectoryDataset(filepath=str(tmp_path / "t.parquet"), version=Version(None, None)
                      ).save(table)
    loaded = TrajectoryDataset(filepath=str(tmp_path / "t.parquet"),
                               version=Version(None, None)).load()
    pd.testing.assert_frame_equal(loaded, table)
    version = next(tmp_path.glob("t.parquet/*")).name
    # the version a table was read from is where it lies, not part of what is saved
    assert loaded.attrs == {"env_id": "Corridor-v0", "loaded_version": version}
    TrajectoryDataset(filepath=str(tmp_path / "u.parquet")).save(loaded)
    assert TrajectoryDataset(filepath=str(tmp_path / "u.parquet")).load().attrs == {
        "env_id": "Corridor-v0"}


def test_a_broken_file_fails_on_load_naming_it(tmp_path, table):
    path = tmp_path / "t.parquet"
    table.assign(t=table["t"] * 2).to_parquet(path)  # written behind the dataset's back
    with pytest.raises(DatasetError, match=r"t\.parquet: t is not contiguous"):
        TrajectoryDataset(filepath=str(path)).load()


def test_a_broken_table_is_never_written(tmp_path, table):
    with pytest.raises(DatasetError, match="missing columns"):
        TrajectoryDataset(filepath=str(tmp_path / "t.parquet")).save(table.drop(columns="t"))
    assert not list(tmp_path.iterdir())
