"""Pipeline tests run a real KedroSession on ``conf/smoke`` in a temporary project copy."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from hindsight_rl import settings
from tests.conftest import copy_project


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the project (config and metadata; data starts empty) as the working dir."""
    root = copy_project(tmp_path_factory.mktemp("project"))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        bootstrap_project(root)
        yield root


@contextmanager
def dag_shape(root: Path, **changes: Any) -> Iterator[None]:
    """The project at ``root`` registered with ``DAG_SHAPE`` changed (as a user edits
    settings.py), then the original shape registered again."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "DAG_SHAPE", {**settings.DAG_SHAPE, **changes})
        bootstrap_project(root)
        yield
    bootstrap_project(root)


def run_session(project: Path, runtime_params: dict | None = None, **run_args) -> dict:
    """One ``kedro run --env smoke [--params ...]`` with the given ``KedroSession.run``
    arguments."""
    with KedroSession.create(project_path=project, env="smoke",
                             runtime_params=runtime_params) as session:
        return session.run(**run_args)


def versions(project: Path, relative: str) -> list[Path]:
    """Saved versions of a versioned dataset, oldest first."""
    return sorted((project / relative).iterdir())


def latest(project: Path, relative: str) -> Path:
    """The file of a versioned dataset's newest version."""
    return next(versions(project, relative)[-1].iterdir())
