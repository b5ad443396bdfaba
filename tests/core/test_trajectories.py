import numpy as np
import pandas as pd
import pytest

from hindsight_rl.core.hindsight import label_hindsight
from hindsight_rl.core.rollouts import collect_rollouts
from hindsight_rl.core.trajectories import TrajectoryTableError, to_table, validate_table


@pytest.fixture
def table(corridor) -> pd.DataFrame:
    """Three corridor episodes of three steps, then one cut by the budget, with labels."""
    return label_hindsight(collect_rollouts(corridor, 11, lambda obs: 1, seed=0), 0.9,
                           "terminated", 5)


def _set(column, row, value):
    def edit(table):
        table.loc[row, column] = value
        return table
    return edit


BROKEN_TABLES = {
    "missing column": (lambda t: t.drop(columns="reward"), r"missing columns \['reward'\]"),
    "no observations": (lambda t: t.drop(columns=["obs_0"]), "expected columns obs_0"),
    "float episode ids": (lambda t: t.astype({"episode_id": "float64"}),
                          "'episode_id' has dtype float64, expected integer"),
    "text rewards": (lambda t: t.astype({"reward": str}), "'reward' has dtype .*, expected float"),
    "non-finite observation": (_set("obs_0", 4, np.inf), "'obs_0' has a non-finite value at row 4"),
    "NaN return-to-go": (_set("return_to_go", 2, np.nan), "'return_to_go' has a non-finite"),
    "gap in t": (_set("t", 4, 5), r"t is not contiguous within episode 1 \(row 4: t=5, expected 1"),
    "episode reappears": (_set("episode_id", 6, 0), "an episode's rows are not consecutive"),
    "ends early": (_set("terminated", 1, True), "episode 0 ends before its last row"),
    "never ends": (_set("terminated", 2, False), "episode 0 does not end on its last row"),
    "empty": (lambda t: t.iloc[:0], "no rows"),
}


def test_collected_and_labelled_tables_are_valid(table):
    validate_table(table)
    validate_table(table.drop(columns=["return_to_go", "episode_return", "success",
                                       "rtg_valid"]))


@pytest.mark.parametrize("case", BROKEN_TABLES)
def test_broken_table_is_an_error_naming_the_problem(table, case):
    damage, problem = BROKEN_TABLES[case]
    with pytest.raises(TrajectoryTableError, match=problem) as error:
        validate_table(damage(table.copy()), source="data/x.parquet")
    assert str(error.value).startswith("data/x.parquet: ")


def test_to_table_output_passes(corridor):
    validate_table(to_table(collect_rollouts(corridor, 4, lambda obs: 0, seed=0)))
