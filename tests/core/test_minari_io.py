"""Trajectory tables to Minari datasets and back, through Minari's own reader and writer."""

from __future__ import annotations

import json
import os
from pathlib import Path

import gymnasium as gym
import minari
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from minari.data_collector import EpisodeBuffer

from hindsight_rl.core.config import EnvConfig, GoalConfig
from hindsight_rl.core.minari_io import (
    MinariDatasetError,
    env_steps,
    read_minari_dataset,
    write_minari_dataset,
)
from tests.conftest import hindsight_table

LONG_POLE = EnvConfig(id="CartPole-v1", overrides={"length": 1.0, "masspole": 0.2},
                      success="truncated")
MOUNTAINCAR = EnvConfig(id="MountainCar-v0", success="terminated",
                        goal=GoalConfig(achieved=[0], desired=[0.5], reached="at_least"))


def foreign_dataset(root: Path, dataset_id: str, env_id: str, episodes: int = 3,
                    seed: int = 0) -> None:
    """A dataset written with Minari's own API, as another tool would: random steps, the
    env's infos (one per observation, the reset's first) as they come."""
    env = gym.make(env_id)
    buffers = []
    for episode in range(episodes):
        observation, info = env.reset(seed=seed + episode)
        steps = {"observations": [observation], "actions": [], "rewards": [],
                 "terminations": [], "truncations": [], "success": [False]}
        while not (steps["terminations"][-1:] == [True] or steps["truncations"][-1:] == [True]):
            action = env.action_space.sample()
            observation, reward, terminated, truncated, info = env.step(action)
            for key, value in (("observations", observation), ("actions", action),
                               ("rewards", reward), ("terminations", terminated),
                               ("truncations", truncated), ("success", terminated)):
                steps[key].append(value)
        success = steps.pop("success")
        buffers.append(EpisodeBuffer(**{k: np.asarray(v) for k, v in steps.items()},
                                     infos={"success": list(np.asarray(success))}))
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        with pytest.warns(UserWarning):  # Minari's advice on missing author and the like
            minari.create_dataset_from_buffers(dataset_id, buffers, env=env,
                                               data_format="arrow")
    finally:
        if previous is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous


@pytest.mark.parametrize("data_format", ["arrow", "hdf5"])
def test_a_table_comes_back_equal_with_its_labels_dtypes_and_provenance(tmp_path, data_format):
    table = hindsight_table(LONG_POLE, 300)
    write_minari_dataset(table, tmp_path, "long-pole-v0", data_format=data_format)
    back = read_minari_dataset(tmp_path, "long-pole-v0")
    pd.testing.assert_frame_equal(back, table)  # values, column order and dtypes
    assert back.attrs == table.attrs
    assert back.attrs["overrides"] == {"length": 1.0, "masspole": 0.2}


def test_relabelled_copies_are_left_out_and_the_goal_is_one_info(tmp_path):
    table = hindsight_table(MOUNTAINCAR, 450, her_k=2)
    assert table["relabeled"].sum() == 900
    write_minari_dataset(table, tmp_path, "ns/mountaincar/hindsight-v0")
    back = read_minari_dataset(tmp_path, "ns/mountaincar/hindsight-v0")
    pd.testing.assert_frame_equal(back, env_steps(table))
    assert "relabeled" not in back and len(back) == 450
    episode = next(minari.MinariDataset(tmp_path / "ns/mountaincar/hindsight-v0/data")
                   .iterate_episodes())
    assert episode.observations.shape == (201, 2)  # the env's observation, without the goal
    assert episode.infos["goal"].shape == (201, 1)
    assert np.all(episode.infos["goal"] == np.float32(0.5))


@settings(max_examples=15, deadline=None)
@given(steps=st.integers(1, 120), seed=st.integers(0, 2**16))
def test_minari_sees_each_episode_whole_never_merged_or_split(tmp_path_factory, steps, seed):
    root = tmp_path_factory.mktemp("minari")
    table = hindsight_table(EnvConfig(id="CartPole-v1", success="truncated"), steps, seed=seed)
    write_minari_dataset(table, root, "cartpole-v0")
    dataset = minari.MinariDataset(root / "cartpole-v0" / "data")
    rows = dict(tuple(table.groupby("episode_id")))
    assert dataset.total_episodes == len(rows) and dataset.total_steps == steps
    for episode in dataset.iterate_episodes():
        rows_of = rows[episode.id]
        obs = rows_of[["obs_0", "obs_1", "obs_2", "obs_3"]].to_numpy()
        next_obs = rows_of[["next_obs_0", "next_obs_1", "next_obs_2", "next_obs_3"]].to_numpy()
        assert len(episode) == len(rows_of)
        np.testing.assert_array_equal(episode.observations, np.vstack([obs, next_obs[-1:]]))
        np.testing.assert_array_equal(episode.actions, rows_of["action"])
        np.testing.assert_array_equal(episode.rewards, rows_of["reward"])
        np.testing.assert_array_equal(episode.terminations, rows_of["terminated"])
        np.testing.assert_array_equal(episode.truncations, rows_of["truncated"])
        labels = episode.infos["return_to_go"]  # one per observation: the last repeats
        np.testing.assert_array_equal(labels, np.r_[rows_of["return_to_go"],
                                                    rows_of["return_to_go"].iloc[-1]])
    pd.testing.assert_frame_equal(read_minari_dataset(root, "cartpole-v0"), table)


def test_a_dataset_another_tool_wrote_gives_the_core_columns_and_its_env_id(tmp_path):
    foreign_dataset(tmp_path, "cartpole/random-v0", "CartPole-v1")
    table = read_minari_dataset(tmp_path, "cartpole/random-v0")
    assert table.attrs == {"env_id": "CartPole-v1"}
    assert list(table.columns) == ["episode_id", "t", "obs_0", "obs_1", "obs_2", "obs_3",
                                   "action", "reward", "next_obs_0", "next_obs_1",
                                   "next_obs_2", "next_obs_3", "terminated", "truncated"]
    assert "success" not in table  # the env's infos are one step later than our labels
    assert table["episode_id"].nunique() == 3 and table["reward"].dtype == np.float32


def test_a_dataset_with_continuous_actions_is_refused(tmp_path):
    foreign_dataset(tmp_path, "pendulum-v0", "Pendulum-v1", episodes=1)
    with pytest.raises(MinariDatasetError, match=r"pendulum-v0 .*action space Box.*needs "
                                                 "Discrete actions"):
        read_minari_dataset(tmp_path, "pendulum-v0")


def _written_with_metadata(root: Path, edit) -> None:
    """``long-pole-v0`` written by us, then its metadata file edited by hand."""
    write_minari_dataset(hindsight_table(LONG_POLE, 20), root, "long-pole-v0")
    path = root / "long-pole-v0" / "data" / "metadata.json"
    metadata = json.loads(path.read_text())
    edit(metadata)
    path.write_text(json.dumps(metadata))


def test_a_dataset_without_its_spaces_is_refused_before_minari_builds_its_env(tmp_path):
    _written_with_metadata(tmp_path, lambda metadata: metadata.pop("observation_space"))
    with pytest.raises(MinariDatasetError, match="records no observation_space; Minari would "
                                                 "build the environment"):
        read_minari_dataset(tmp_path, "long-pole-v0")


def test_a_missing_dataset_names_the_ones_there(tmp_path):
    write_minari_dataset(hindsight_table(LONG_POLE, 20), tmp_path, "ns/long-pole-v0")
    with pytest.raises(MinariDatasetError, match=r"ns/long-pole-v1 in .*: no such dataset "
                                                 r".*datasets there: ns/long-pole-v0$"):
        read_minari_dataset(tmp_path, "ns/long-pole-v1")


@pytest.mark.parametrize("dataset_id", ["long-pole", "../long-pole-v0", "a b-v0", ""])
def test_a_malformed_dataset_id_is_refused(tmp_path, dataset_id):
    with pytest.raises(MinariDatasetError, match="dataset_id: got .*, expected Minari's form"):
        write_minari_dataset(hindsight_table(LONG_POLE, 5), tmp_path, dataset_id)
    assert not list(tmp_path.iterdir())


def _broken_next_obs(table: pd.DataFrame) -> pd.DataFrame:
    table.loc[1, "next_obs_0"] += 1.0
    return table


def _with_attrs(table: pd.DataFrame, **attrs) -> pd.DataFrame:
    table.attrs = attrs
    return table


BAD_TABLES = {
    "next_obs is not the next obs": (_broken_next_obs,
                                     r"row 1's next_obs is not row 2's obs \(episode 0\)"),
    "no env recorded": (_with_attrs, "the table records no env_id"),
    "another env's table": (lambda t: _with_attrs(t, env_id="Acrobot-v1"),
                            "the table has 4 observation columns .*Acrobot-v1 has observation "
                            "space Box"),
    "a text label": (lambda t: t.assign(note="x"), "column 'note' has dtype .*only numeric "
                                                   "and bool columns"),
    "a broken table": (lambda t: t.drop(columns="reward"), r"missing columns \['reward'\]"),
    "continuous actions": (lambda t: hindsight_table(EnvConfig(id="Pendulum-v1"), 40),
                           "the table has 1-entry continuous actions .*only tables of "
                           "discrete actions"),
}


@pytest.mark.parametrize("case", BAD_TABLES)
def test_a_table_minari_cannot_hold_is_refused_naming_why_and_nothing_is_written(tmp_path,
                                                                                 case):
    damage, problem = BAD_TABLES[case]
    table = damage(hindsight_table(EnvConfig(id="CartPole-v1"), 40))
    with pytest.raises(ValueError, match=problem):
        write_minari_dataset(table, tmp_path, "cartpole-v0")
    assert not list(tmp_path.iterdir())


def test_unknown_writer_arguments_are_refused(tmp_path):
    with pytest.raises(MinariDatasetError, match=r"unknown arguments \['authors'\]"):
        write_minari_dataset(hindsight_table(LONG_POLE, 5), tmp_path, "x-v0", authors="me")


def test_a_dataset_is_replaced_only_when_overwrite_is_set(tmp_path):
    first, second = hindsight_table(LONG_POLE, 30), hindsight_table(LONG_POLE, 50, seed=1)
    write_minari_dataset(first, tmp_path, "ns/x-v0", author="first")
    with pytest.raises(MinariDatasetError, match="exists already .*overwrite: false"):
        write_minari_dataset(second, tmp_path, "ns/x-v0")
    pd.testing.assert_frame_equal(read_minari_dataset(tmp_path, "ns/x-v0"), first)
    write_minari_dataset(second, tmp_path, "ns/x-v0", overwrite=True)
    pd.testing.assert_frame_equal(read_minari_dataset(tmp_path, "ns/x-v0"), second)
    assert sorted(p.name for p in (tmp_path / "ns").iterdir()) == [
        "namespace_metadata.json", "x-v0"]  # nothing hidden left behind


def test_a_crash_while_writing_keeps_the_previous_dataset_and_leaves_nothing_half_written(
        tmp_path, monkeypatch):
    first = hindsight_table(LONG_POLE, 30)
    write_minari_dataset(first, tmp_path, "x-v0")
    real = minari.create_dataset_from_buffers

    def crashes_when_written(*args, **kwargs):
        real(*args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(minari, "create_dataset_from_buffers", crashes_when_written)
    with pytest.raises(OSError, match="disk full"):
        write_minari_dataset(hindsight_table(LONG_POLE, 50, seed=1), tmp_path, "x-v0",
                             overwrite=True)
    with pytest.raises(OSError, match="disk full"):
        write_minari_dataset(first, tmp_path, "y-v0")
    assert [p.name for p in tmp_path.iterdir()] == ["x-v0"]
    pd.testing.assert_frame_equal(read_minari_dataset(tmp_path, "x-v0"), first)


@pytest.mark.parametrize("before", [None, "/somewhere/else"])
def test_nothing_goes_to_the_home_folder_and_minaris_variable_is_restored(tmp_path,
                                                                          monkeypatch, before):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    if before is None:
        monkeypatch.delenv("MINARI_DATASETS_PATH", raising=False)
    else:
        monkeypatch.setenv("MINARI_DATASETS_PATH", before)
    write_minari_dataset(hindsight_table(LONG_POLE, 10), tmp_path / "datasets", "ns/x-v0")
    read_minari_dataset(tmp_path / "datasets", "ns/x-v0")
    assert not (tmp_path / "home").exists()
    assert os.environ.get("MINARI_DATASETS_PATH") == before


@pytest.mark.parametrize("labels", [["reward"], ["obs_0"], ["next_obs"], "return_to_go"])
def test_metadata_whose_labels_would_replace_the_contracts_columns_is_refused(tmp_path, labels):
    _written_with_metadata(tmp_path, lambda metadata: metadata["hindsight_rl"].update(
        labels=labels))
    with pytest.raises(MinariDatasetError, match=r"hindsight_rl\.labels names .*which are not "
                                                 "label columns"):
        read_minari_dataset(tmp_path, "long-pole-v0")
