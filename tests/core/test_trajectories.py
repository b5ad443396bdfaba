import numpy as np
import pandas as pd
import pytest

from hindsight_rl.core.hindsight import label_hindsight
from hindsight_rl.core.rollouts import collect_rollouts
from hindsight_rl.core.trajectories import (
    TrajectoryTableError,
    action_width,
    from_table,
    is_trajectory_table,
    to_table,
    transitions_from_lists,
    validate_table,
)


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


# --- Continuous actions: action_0..action_{d-1} -----------------------------------------

def _continuous_transitions(action_dim: int = 2, steps: int = 5):
    """Two episodes (3 steps terminated, then 2 cut) with ``action_dim``-entry actions."""
    rng = np.random.default_rng(0)
    return transitions_from_lists(
        episode_id=[0, 0, 0, 1, 1][:steps], t=[0, 1, 2, 0, 1][:steps],
        obs=rng.normal(size=(steps, 3)), action=list(rng.uniform(-1, 1, (steps, action_dim))),
        reward=rng.normal(size=steps), next_obs=rng.normal(size=(steps, 3)),
        terminated=[False, False, True, False, False][:steps],
        truncated=[False, False, False, False, True][:steps])


def test_continuous_actions_round_trip_as_float32_columns():
    transitions = _continuous_transitions()
    assert transitions.continuous and transitions.action.dtype == np.float32
    table = to_table(transitions)
    validate_table(table)
    assert list(table.columns[5:7]) == ["action_0", "action_1"] and "action" not in table
    assert (table["action_0"].dtype, table["action_1"].dtype) == (np.float32, np.float32)
    assert action_width(table) == 2 and is_trajectory_table(table)
    back = from_table(table)
    assert back.action.shape == (5, 2) and back.action.dtype == np.float32
    np.testing.assert_array_equal(back.action, transitions.action)
    np.testing.assert_array_equal(back.obs, transitions.obs)


def test_a_one_entry_continuous_action_keeps_its_column_axis():
    back = from_table(to_table(_continuous_transitions(action_dim=1)))
    assert back.action.shape == (5, 1) and back.action.dtype == np.float32


def test_discrete_actions_keep_their_single_integer_column(corridor):
    table = to_table(collect_rollouts(corridor, 4, lambda obs: 1, seed=0))
    assert table["action"].dtype == np.int64 and action_width(table) == 0
    back = from_table(table)
    assert back.action.shape == (4,) and not back.continuous


BROKEN_CONTINUOUS_TABLES = {
    "both kinds": (lambda t: t.assign(action=np.int64(0)),
                   r"both a discrete 'action' column and continuous columns \['action_0', "
                   r"'action_1'\]"),
    "neither kind": (lambda t: t.drop(columns=["action_0", "action_1"]),
                     "no action columns: expected an 'action' column"),
    "a gap": (lambda t: t.drop(columns="action_0"),
              r"continuous action columns \['action_1'\] are not action_0..action_<d-1>"),
    "text action": (lambda t: t.astype({"action_1": str}),
                    "column 'action_1' has dtype .*expected float"),
    "NaN action": (_set("action_0", 2, np.nan),
                   "column 'action_0' has a non-finite value at row 2"),
}


@pytest.mark.parametrize("case", BROKEN_CONTINUOUS_TABLES)
def test_a_broken_continuous_table_is_an_error_naming_the_problem(case):
    damage, problem = BROKEN_CONTINUOUS_TABLES[case]
    table = to_table(_continuous_transitions())
    with pytest.raises(TrajectoryTableError, match=f"^data/x.parquet: {problem}"):
        validate_table(damage(table), source="data/x.parquet")


def test_a_discrete_table_without_its_action_is_refused(table):
    with pytest.raises(TrajectoryTableError, match="no action columns"):
        validate_table(table.drop(columns="action"))


def test_actions_that_are_neither_indices_nor_vectors_are_refused():
    with pytest.raises(ValueError, match=r"actions of shape \(2, 1, 1\)"):
        transitions_from_lists(episode_id=[0, 0], t=[0, 1], obs=np.zeros((2, 1)),
                               action=np.zeros((2, 1, 1)), reward=[0, 0],
                               next_obs=np.zeros((2, 1)), terminated=[False, True],
                               truncated=[False, False])
