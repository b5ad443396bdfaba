"""Contracts of the artefacts other than policy files and trajectory tables: training
histories, metrics JSON, and JSON read with limits. Each check raises
:class:`ArtefactContractError` naming the file (``source``) and what was expected, so a
renamed column or a hand-edited number fails where it is read, not as a wrong verdict.

Kedro-free: the datasets in ``hindsight_rl.datasets`` call these on every save and load.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hindsight_rl.core.errors import HindsightRLError

HISTORY_METRICS = ("episode_return", "eval_return", "loss")
"""What a training history records (``core.dqn``): greedy return at each learning-curve
point, each episode's return, and the loss of each training burst."""
JUDGE_METRIC = "judge_return"
"""An ablation run's extra rows: the final policy's returns on the held-out episodes."""
MAX_JSON_DEPTH = 32

VERSION_ATTR = "loaded_version"
"""Key in a loaded table's ``DataFrame.attrs``: the catalog version it was read from, which
reports cite (the datasets set it on every load)."""
"""Deeper JSON is not an artefact of ours; refused before a reader recurses into it."""


class ArtefactContractError(HindsightRLError, ValueError):
    """An artefact breaks its contract (DESIGN.md, README "Artefacts"); the message names the
    file and the problem."""


def bounded_json(text: str | bytes, what: str, finite: bool = True) -> Any:
    """``json.loads`` that refuses, with ``ValueError``, documents nested deeper than
    :data:`MAX_JSON_DEPTH` (the parser itself raises ``RecursionError`` at about a thousand
    levels, and readers after it walk documents recursively) and, when ``finite``, the
    non-standard constants ``NaN`` and ``Infinity``, which are not JSON (a training
    checkpoint, our own file, does store them)."""
    def refuse_constant(name: str) -> float:
        raise ValueError(f"{what} holds {name}, which is not a JSON number")

    try:
        document = json.loads(text, **({"parse_constant": refuse_constant} if finite else {}))
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply") from None
    for _, depth in _walk(document):
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep")
    return document


def _walk(document: Any) -> Iterator[tuple[Any, int]]:
    """Every value of a JSON document with its depth (1 at the top), without recursion."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        yield value, depth
        if isinstance(value, dict | list) and depth <= MAX_JSON_DEPTH:
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)


def validate_json_document(document: Any, source: str,
                           required_keys: Iterable[str] = ()) -> None:
    """A metrics-style JSON document: finite numbers only (``NaN`` is not JSON and no metric
    of ours is infinite), nested at most :data:`MAX_JSON_DEPTH` levels, and, when
    ``required_keys`` are given, an object holding each of them."""
    for value, depth in _walk(document):
        if depth > MAX_JSON_DEPTH:
            raise ArtefactContractError(f"{source}: nested more than {MAX_JSON_DEPTH} levels")
        if isinstance(value, float) and not math.isfinite(value):
            raise ArtefactContractError(f"{source}: holds the non-finite number {value}; "
                                        "expected finite numbers (null for 'none')")
    required = list(required_keys)
    if required and not isinstance(document, dict):
        raise ArtefactContractError(f"{source}: expected a JSON object with keys {required}, "
                                    f"got {type(document).__name__}")
    missing = [key for key in required if key not in document]
    if missing:
        raise ArtefactContractError(f"{source}: missing keys {missing} (expected {required})")


def validate_history(table: pd.DataFrame, source: str,
                     metrics: tuple[str, ...] = HISTORY_METRICS,
                     text_columns: tuple[str, ...] = ()) -> None:
    """A training history (long table): exactly the columns ``env_step`` (integer >= 0),
    ``metric`` (one of ``metrics``), ``value`` (finite number), ``seed`` (integer >= 0) and
    ``text_columns`` (non-empty strings), with at least one ``eval_return`` row: the learning
    curve every comparison reads."""
    def fail(problem: str) -> None:
        raise ArtefactContractError(f"{source}: {problem}")

    expected = ["env_step", "metric", "value", "seed", *text_columns]
    missing = [name for name in expected if name not in table.columns]
    extra = [name for name in table.columns if name not in expected]
    if missing or extra:
        fail(f"columns are {list(table.columns)}; expected {expected}"
             + (f" (missing {missing})" if missing else ""))
    for name in ("env_step", "seed"):
        column = table[name]
        if column.dtype.kind not in "iu":
            fail(f"column {name!r} has dtype {column.dtype}, expected integer")
        if len(column) and column.min() < 0:
            fail(f"column {name!r} has a negative value at row {_first(column < 0)}")
    if table["value"].dtype.kind not in "iuf":
        fail(f"column 'value' has dtype {table['value'].dtype}, expected float")
    values = table["value"].to_numpy(np.float64)
    if not np.isfinite(values).all():
        row = _first(pd.Series(~np.isfinite(values)))
        fail(f"column 'value' has a non-finite value at row {row} "
             f"({table['metric'].iloc[row]!r} at env step {table['env_step'].iloc[row]})")
    unknown = sorted({str(m) for m in table["metric"].unique()} - set(metrics))
    if unknown:
        fail(f"unknown metric {unknown[0]!r} at row {_first(table['metric'] == unknown[0])}; "
             f"expected one of {list(metrics)}")
    for name in text_columns:
        if not table[name].map(lambda v: isinstance(v, str) and v != "").all():
            fail(f"column {name!r} must hold non-empty strings")
    if not (table["metric"] == "eval_return").any():
        fail("no 'eval_return' rows: a history without its learning curve")


def _first(mask: pd.Series) -> int:
    return int(np.flatnonzero(mask.to_numpy())[0])


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a hidden name beside it that no other process (nor
    another save in this one) uses, renamed into place: a crash or a full disk mid-write
    keeps the previous file, and two writers never rename each other's half-written bytes."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def loaded_version(value: Any) -> str | None:
    """The catalog version a loaded table or policy was read from (None: not loaded from a
    versioned dataset): how a report names its inputs."""
    if isinstance(value, pd.DataFrame):
        return value.attrs.get(VERSION_ATTR)
    return getattr(value, "loaded_version", None)


def input_versions(inputs: dict[str, Any]) -> dict[str, str]:
    """The catalog version each input was loaded from (inputs not loaded from a versioned
    dataset are left out): a report's provenance."""
    versions = {name: loaded_version(value) for name, value in inputs.items()}
    return {name: version for name, version in versions.items() if version is not None}
