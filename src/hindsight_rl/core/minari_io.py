"""Trajectory tables as Minari datasets and back: the offline-RL format that d3rlpy, TorchRL
and Minari's own tools read (the ``minari`` extra).

The mapping, per episode of ``T`` rows (``docs/design.md``, "Minari datasets"):

- ``observations``: the ``T`` rows' ``obs`` and the last row's ``next_obs`` (``T + 1``
  entries, as Minari requires), so a table whose ``next_obs`` is not the next row's ``obs``
  within an episode cannot be written; ``actions``, ``rewards``, ``terminations``,
  ``truncations``: the rows' columns. Minari numbers episodes ``0..N-1`` in table order and
  ``t`` is the position in the episode.
- ``infos`` (``T + 1`` entries, one per observation): every other column of the row whose
  transition starts at that observation (``return_to_go``, ``success``, ...; ``goal_0..``
  as one array ``goal``); the last entry, the final observation's, repeats the last row's.
- relabelled copies (``relabeled`` true) are not environment steps and are not written;
  consumers relabel themselves.
- the table's provenance (``attrs``: env id, ``make_kwargs``, overrides, seed, behaviour
  policy) and its label columns go in the dataset's metadata under ``hindsight_rl``; Minari's
  ``env_spec`` names the env as ``gymnasium.make`` builds it, without our overrides.

Reading gives the table back: equal to the written one without relabelled rows. A dataset
Minari or another tool wrote gives the core columns only (its ``infos`` follow the env's own
alignment, one step later, and are left out) and its ``env_spec``'s id as ``env_id``.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from pydantic import ValidationError

from hindsight_rl.core.config import EnvConfig
from hindsight_rl.core.envs import make_env
from hindsight_rl.core.errors import HindsightRLError
from hindsight_rl.core.trajectories import (
    Transitions,
    action_width,
    family_width,
    from_table,
    to_table,
    transitions_from_lists,
    validate_table,
)

METADATA_KEY = "hindsight_rl"
"""Key of the dataset metadata that holds the table's ``attrs`` and label columns."""
DATASET_ARGS = frozenset({"author", "author_email", "code_permalink", "description",
                          "algorithm_name", "data_format", "requirements"})
"""Arguments of ``minari.create_dataset_from_buffers`` a writer may set."""
DEFAULT_DATA_FORMAT = "arrow"  # pyarrow is a dependency already; "hdf5" needs h5py
_CORE_COLUMNS = ("episode_id", "t", "action", "reward", "terminated", "truncated")
_FAMILIES = ("obs", "next_obs", "goal")
_GOAL_INFO = "goal"
_ENVIRONMENT_LOCK = threading.Lock()


class MinariDatasetError(HindsightRLError, ValueError):
    """A Minari dataset cannot be read as a trajectory table, or a table cannot be written
    as one; the message names the dataset and the problem."""


def dataset_source(datasets_path: Path, dataset_id: str) -> str:
    """How errors name a Minari dataset."""
    return f"Minari dataset {dataset_id} in {datasets_path}"


def check_dataset_id(dataset_id: str) -> None:
    """``(namespace/)name-v<version>``, Minari's form; otherwise it fails only once the
    data is converted, or reads a folder outside the datasets path."""
    _minari()
    from minari.dataset.minari_dataset import parse_dataset_id

    try:
        parse_dataset_id(dataset_id)  # TypeError: no version
    except (ValueError, TypeError):
        raise MinariDatasetError(f"dataset_id: got {dataset_id!r}, expected Minari's form "
                                 "'(namespace/)name-v<version>', e.g. 'hindsight-rl/"
                                 "mountaincar/hindsight-v0'") from None


def check_dataset_args(dataset_args: dict[str, Any], source: str) -> None:
    """Only arguments of ``minari.create_dataset_from_buffers`` that a writer may set."""
    unknown = sorted(set(dataset_args) - DATASET_ARGS)
    if unknown:
        raise MinariDatasetError(f"{source}: unknown arguments {unknown}; expected some of "
                                 f"{sorted(DATASET_ARGS)}")


def write_minari_dataset(table: pd.DataFrame, datasets_path: Path, dataset_id: str, *,
                         overwrite: bool = False, **dataset_args: Any) -> Path:
    """Write ``table`` as the Minari dataset ``dataset_id`` under ``datasets_path`` (what
    ``MINARI_DATASETS_PATH`` names for Minari's tools); returns its folder.

    The dataset is written whole beside the others under a hidden name, then renamed into
    place, so a crash never leaves half a dataset under the id. One that exists is replaced
    only with ``overwrite`` (Minari treats a dataset id as immutable). ``dataset_args`` are
    ``minari.create_dataset_from_buffers``'s (:data:`DATASET_ARGS`).
    """
    minari = _minari()
    check_dataset_id(dataset_id)
    source = dataset_source(datasets_path, dataset_id)
    datasets_path = Path(datasets_path).absolute()  # Minari mis-sizes relative folders
    folder = datasets_path / dataset_id
    if folder.exists() and not overwrite:
        raise MinariDatasetError(f"{source}: it exists already and this dataset is set not to "
                                 "overwrite it (overwrite: false); to read it, do not run the "
                                 "node that writes it (kedro run --from-nodes <the node that "
                                 "reads it>)")
    check_dataset_args(dataset_args, source)
    steps = env_steps(table)
    buffers = episode_buffers(steps, source)
    env = _recorded_env(steps, source)
    staging = datasets_path / f".{uuid.uuid4().hex}.tmp"  # Minari skips hidden folders
    try:
        with _minari_datasets_path(staging), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is set to None")  # advice, not errors
            written = minari.create_dataset_from_buffers(
                dataset_id, buffers, env=env, **_dataset_args(steps, dataset_args))
        written.storage.update_metadata({METADATA_KEY: {
            "attrs": dict(steps.attrs), "labels": label_columns(steps)}})
        _publish(staging, datasets_path, dataset_id)
    finally:
        env.close()
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def read_minari_dataset(datasets_path: Path, dataset_id: str) -> pd.DataFrame:
    """The Minari dataset ``dataset_id`` under ``datasets_path`` as a valid trajectory table
    (``attrs`` as recorded; ``env_id`` from its ``env_spec`` if another tool wrote it)."""
    minari = _minari()
    check_dataset_id(dataset_id)
    source = dataset_source(datasets_path, dataset_id)
    datasets_path = Path(datasets_path).absolute()
    data_path = datasets_path / dataset_id / "data"
    metadata = _raw_metadata(data_path, datasets_path, source)
    dataset = minari.MinariDataset(data_path)
    _check_spaces(dataset.observation_space, dataset.action_space, source)
    ours = metadata.get(METADATA_KEY) or {}
    labels = ours.get("labels", [])
    _check_labels(labels, source)
    table = table_from_episodes(dataset.iterate_episodes(), labels, source)
    if METADATA_KEY in metadata:
        table.attrs = dict(ours.get("attrs", {}))
    elif dataset.env_spec is not None:
        table.attrs = {"env_id": dataset.env_spec.id}
    validate_table(table, source)
    return table


def env_steps(table: pd.DataFrame) -> pd.DataFrame:
    """The rows that were environment steps, without the ``relabeled`` column."""
    if "relabeled" not in table:
        return table
    steps = table.loc[~table["relabeled"]].drop(columns="relabeled").reset_index(drop=True)
    steps.attrs = dict(table.attrs)
    return steps


def label_columns(table: pd.DataFrame) -> list[str]:
    """Columns beyond the contract's transition (hindsight labels), in table order; the
    goal columns are one ``goal`` entry."""
    families = {f"{prefix}_{i}" for prefix in _FAMILIES
                for i in range(family_width(table, prefix))}
    labels = [name for name in table.columns
              if name not in _CORE_COLUMNS and name not in families]
    return labels + ([_GOAL_INFO] if family_width(table, "goal") else [])


def episode_buffers(table: pd.DataFrame, source: str) -> list[Any]:
    """One ``minari`` ``EpisodeBuffer`` per episode of ``table`` (environment steps only)."""
    from minari.data_collector import EpisodeBuffer

    validate_table(table, source)
    _refuse_continuous_actions(table, source)
    transitions = from_table(table)
    width = family_width(table, "obs")
    _check_continuous(transitions, width, source)
    labels = {name: _label_values(table, name, source) for name in label_columns(table)
              if name != _GOAL_INFO}
    goal = transitions.obs[:, width:]
    buffers = []
    for start, stop in _episode_bounds(transitions.episode_id):
        infos = {name: list(_with_final(values, start, stop)) for name, values in labels.items()}
        if goal.shape[1]:
            infos[_GOAL_INFO] = _with_final(goal, start, stop)
        buffers.append(EpisodeBuffer(
            observations=np.concatenate([transitions.obs[start:stop, :width],
                                         transitions.next_obs[stop - 1:stop, :width]]),
            actions=transitions.action[start:stop], rewards=transitions.reward[start:stop],
            terminations=transitions.terminated[start:stop],
            truncations=transitions.truncated[start:stop], infos=infos or None))
    return buffers


def table_from_episodes(episodes: Iterable[Any], labels: list[str], source: str
                        ) -> pd.DataFrame:
    """The trajectory table of Minari ``EpisodeData``: one row per step, ``labels`` (names
    in ``infos``) as columns after the contract's."""
    columns: dict[str, list[np.ndarray]] = {name: [] for name in (
        "episode_id", "t", "obs", "action", "reward", "next_obs", "terminated", "truncated",
        *labels)}
    for episode in episodes:
        steps = len(episode.rewards)
        observations = np.asarray(episode.observations, np.float32)
        if steps == 0 or observations.shape[0] != steps + 1:
            raise MinariDatasetError(f"{source}: episode {episode.id} has {steps} steps and "
                                     f"{observations.shape[0]} observations; expected at "
                                     "least one step and one observation more than steps")
        for name, values in (("episode_id", np.full(steps, episode.id)),
                             ("t", np.arange(steps)), ("obs", observations[:-1]),
                             ("action", episode.actions), ("reward", episode.rewards),
                             ("next_obs", observations[1:]),
                             ("terminated", episode.terminations),
                             ("truncated", episode.truncations)):
            columns[name].append(np.asarray(values))
        for name in labels:
            columns[name].append(_info(episode, name, steps, source))
    if not columns["t"]:
        raise MinariDatasetError(f"{source}: no episodes")
    joined = {name: np.concatenate(parts) for name, parts in columns.items()}
    goal = joined.pop(_GOAL_INFO, np.zeros((len(joined["t"]), 0), np.float32))
    transitions = transitions_from_lists(**{
        **joined, "obs": np.concatenate([joined["obs"], goal], axis=1),
        "next_obs": np.concatenate([joined["next_obs"], goal], axis=1)})
    table = to_table(transitions, goal_dim=goal.shape[1])
    for name in labels:
        if name != _GOAL_INFO:
            table[name] = joined[name]
    return table


def _minari() -> Any:
    try:
        import minari
    except ImportError:
        raise MinariDatasetError("Minari datasets need the minari package: pip install "
                                 "'hindsight-rl[minari]'") from None
    return minari


@contextmanager
def _minari_datasets_path(path: Path) -> Iterator[None]:
    """Minari's writers take no folder, only ``MINARI_DATASETS_PATH``: set it for one
    write at a time (threads of one process share it), then restore it."""
    with _ENVIRONMENT_LOCK:
        before = os.environ.get("MINARI_DATASETS_PATH")
        os.environ["MINARI_DATASETS_PATH"] = str(path)
        try:
            yield
        finally:
            if before is None:
                del os.environ["MINARI_DATASETS_PATH"]
            else:
                os.environ["MINARI_DATASETS_PATH"] = before


def _publish(staging: Path, datasets_path: Path, dataset_id: str) -> None:
    """Move the dataset written under ``staging`` into ``datasets_path`` (with the metadata
    files of namespaces that are new there), replacing one with its id."""
    from minari.namespace import NAMESPACE_METADATA_FILENAME

    namespace = Path(dataset_id).parent.parts
    for depth in range(1, len(namespace) + 1):
        level = Path(*namespace[:depth])
        written = staging / level / NAMESPACE_METADATA_FILENAME
        kept = datasets_path / level / NAMESPACE_METADATA_FILENAME
        if written.exists() and not kept.exists():
            kept.parent.mkdir(parents=True, exist_ok=True)
            os.replace(written, kept)
    target = datasets_path / dataset_id
    target.parent.mkdir(parents=True, exist_ok=True)
    retired = target.with_name(f".{target.name}.{uuid.uuid4().hex}.old")
    if target.exists():
        os.replace(target, retired)
    os.replace(staging / dataset_id, target)
    shutil.rmtree(retired, ignore_errors=True)


def _raw_metadata(data_path: Path, datasets_path: Path, source: str) -> dict[str, Any]:
    """The dataset's metadata file, refused unless it records its spaces: without them
    Minari builds the environment its ``env_spec`` names, importing that code."""
    path = data_path / "metadata.json"
    if not path.is_file():
        found = sorted(str(p.parent.parent.relative_to(datasets_path))
                       for p in datasets_path.rglob("data/metadata.json")
                       if not any(part.startswith(".") for part in
                                  p.relative_to(datasets_path).parts))
        raise MinariDatasetError(f"{source}: no such dataset ({path} does not exist); "
                                 f"datasets there: {', '.join(found) or 'none'}")
    try:
        metadata = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise MinariDatasetError(f"{source}: unreadable metadata {path}: {error}") from None
    missing = [key for key in ("observation_space", "action_space") if key not in metadata]
    if missing:
        raise MinariDatasetError(f"{source}: its metadata records no {' and no '.join(missing)}"
                                 "; Minari would build the environment to find them, running "
                                 "the code its env_spec names, so it is not read")
    return metadata


def _check_spaces(observation_space: gym.Space, action_space: gym.Space, source: str) -> None:
    if not (isinstance(observation_space, gym.spaces.Box)
            and len(observation_space.shape) == 1):
        raise MinariDatasetError(f"{source}: observation space {observation_space}; a "
                                 "trajectory table needs a flat Box (1-d)")
    if not (isinstance(action_space, gym.spaces.Discrete) and action_space.start == 0):
        raise MinariDatasetError(f"{source}: action space {action_space}; a trajectory table "
                                 "needs Discrete actions numbered from 0")


def _check_labels(labels: Any, source: str) -> None:
    """Label names from the metadata become columns: never one of the contract's."""
    def taken(name: Any) -> bool:
        return (not isinstance(name, str) or name in (*_CORE_COLUMNS, "obs", "next_obs")
                or name.rpartition("_")[0] in _FAMILIES)

    wrong = [name for name in labels if taken(name)] if isinstance(labels, list) else [labels]
    if wrong:
        raise MinariDatasetError(f"{source}: its metadata's {METADATA_KEY}.labels names "
                                 f"{wrong}, which are not label columns")


def _recorded_env(table: pd.DataFrame, source: str) -> gym.Env:
    """The environment the table records (``attrs``), built as the pipeline builds it: its
    spaces and ``env_spec`` describe the Minari dataset."""
    if "env_id" not in table.attrs:
        raise MinariDatasetError(f"{source}: the table records no env_id (attrs); a Minari "
                                 "dataset names the environment it was collected on")
    try:
        config = EnvConfig(id=table.attrs["env_id"],
                           make_kwargs=dict(table.attrs.get("make_kwargs") or {}),
                           overrides=dict(table.attrs.get("overrides") or {}))
    except ValidationError as error:
        raise MinariDatasetError(f"{source}: the table's env attrs are not an env config: "
                                 f"{error}") from None
    env = make_env(config)
    width, actions = family_width(table, "obs"), table["action"].to_numpy()
    if env.observation_space.shape != (width,) \
            or not isinstance(env.action_space, gym.spaces.Discrete) \
            or actions.max() >= env.action_space.n:
        env.close()
        raise MinariDatasetError(f"{source}: the table has {width} observation columns and "
                                 f"actions up to {actions.max()}; {config.id} has observation "
                                 f"space {env.observation_space} and action space "
                                 f"{env.action_space}")
    return env


def _dataset_args(table: pd.DataFrame, given: dict[str, Any]) -> dict[str, Any]:
    """What the dataset says about itself unless the writer says otherwise."""
    attrs = table.attrs
    description = (f"hindsight-rl trajectory table collected on {attrs['env_id']}"
                   + (f" with overrides {attrs['overrides']}" if attrs.get("overrides") else "")
                   + f"; labels in infos: {', '.join(label_columns(table)) or 'none'}")
    defaults = {"data_format": DEFAULT_DATA_FORMAT, "description": description,
                "algorithm_name": f"hindsight-rl/{attrs.get('behaviour_policy') or 'unknown'}"}
    return {**defaults, **given}


def _refuse_continuous_actions(table: pd.DataFrame, source: str) -> None:
    """Only discrete actions are mapped so far: continuous ``action_0..`` columns would
    otherwise be written as labels beside no actions at all."""
    if action_width(table):
        raise MinariDatasetError(f"{source}: the table has {action_width(table)}-entry "
                                 "continuous actions (action_0..); only tables of discrete "
                                 "actions can be written as Minari datasets so far")


def _check_continuous(transitions: Transitions, width: int, source: str) -> None:
    """Within an episode, each row's ``next_obs`` is the next row's ``obs``: Minari keeps
    one sequence of observations per episode."""
    same_episode = transitions.episode_id[1:] == transitions.episode_id[:-1]
    differs = ~(transitions.next_obs[:-1, :width] == transitions.obs[1:, :width]).all(axis=1)
    rows = np.flatnonzero(same_episode & differs)
    if len(rows):
        row = int(rows[0])
        raise MinariDatasetError(f"{source}: row {row}'s next_obs is not row {row + 1}'s obs "
                                 f"(episode {transitions.episode_id[row]}); a Minari episode "
                                 "is one sequence of observations")


def _label_values(table: pd.DataFrame, name: str, source: str) -> np.ndarray:
    values = table[name].to_numpy()
    if values.dtype.kind not in "biuf":
        raise MinariDatasetError(f"{source}: column {name!r} has dtype {values.dtype}; only "
                                 "numeric and bool columns can go into Minari infos")
    return values


def _episode_bounds(episode_id: np.ndarray) -> Iterator[tuple[int, int]]:
    starts = np.flatnonzero(np.r_[True, episode_id[1:] != episode_id[:-1]])
    yield from zip(starts.tolist(), [*starts[1:].tolist(), len(episode_id)], strict=True)


def _with_final(values: np.ndarray, start: int, stop: int) -> np.ndarray:
    """One entry per observation: the rows', then the last row's again for the final one."""
    return np.concatenate([values[start:stop], values[stop - 1:stop]])


def _info(episode: Any, name: str, steps: int, source: str) -> np.ndarray:
    values = episode.infos.get(name) if isinstance(episode.infos, dict) else None
    if values is None or len(values) != steps + 1:
        raise MinariDatasetError(f"{source}: episode {episode.id} lacks infos[{name!r}] with "
                                 f"{steps + 1} entries (the metadata lists it as a label)")
    return np.asarray(values)[:steps]
