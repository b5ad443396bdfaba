import numpy as np
import pandas as pd
import pytest
from kedro.io.core import DatasetError, Version

from hindsight_rl.core.config import EnvConfig
from hindsight_rl.core.envs import env_info
from hindsight_rl.core.rollouts import collect_rollouts, uniform_policy
from hindsight_rl.core.trajectories import from_table, to_table
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


def test_a_continuous_action_table_round_trips_versioned(tmp_path):
    """Pendulum-v1's uniform rollouts: ``action_0`` float32 comes back as it was saved,
    each save a version of its own, a pinned version loading what was saved under it."""
    pendulum = EnvConfig(id="Pendulum-v1")

    def collect(seed: int) -> pd.DataFrame:
        act = uniform_policy(env_info(pendulum), np.random.default_rng(seed))
        table = to_table(collect_rollouts(pendulum, 30, act, seed=seed))
        table.attrs = {"env_id": "Pendulum-v1"}
        return table

    path = str(tmp_path / "p.parquet")
    first, second = collect(0), collect(1)
    TrajectoryDataset(filepath=path, version=Version(None, "2024-01-01T00.00.00.000Z")
                      ).save(first)
    TrajectoryDataset(filepath=path, version=Version(None, "2024-01-02T00.00.00.000Z")
                      ).save(second)
    latest = TrajectoryDataset(filepath=path, version=Version(None, None)).load()
    pinned = TrajectoryDataset(filepath=path,
                               version=Version("2024-01-01T00.00.00.000Z", None)).load()
    assert latest["action_0"].dtype == np.float32 and "action" not in latest
    pd.testing.assert_frame_equal(latest, second)
    pd.testing.assert_frame_equal(pinned, first)
    assert pinned.attrs["loaded_version"] == "2024-01-01T00.00.00.000Z"
    np.testing.assert_array_equal(from_table(pinned).action,
                                  from_table(first).action)
    assert not first["action_0"].equals(second["action_0"])


def test_a_table_with_both_kinds_of_action_is_never_written(tmp_path, table):
    with pytest.raises(DatasetError, match="both a discrete 'action' column and continuous"):
        TrajectoryDataset(filepath=str(tmp_path / "t.parquet")).save(
            table.assign(action_0=np.float32(0.5)))
    assert not list(tmp_path.iterdir())
