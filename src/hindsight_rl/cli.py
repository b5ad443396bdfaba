"""``kedro run`` for this project: Kedro's own command, except that an error a user can fix
from its message (:class:`~hindsight_rl.core.errors.HindsightRLError`, or Kedro's
``DatasetNotFoundError`` for a dataset name that does not exist) is printed as one paragraph
with exit status 1 instead of a traceback, under every runner: a worker's project error
reaches this process as itself (``hindsight_rl.datasets.contracts``, ``runners``).

Kedro picks up ``run`` from a project's ``cli.py`` in place of its built-in command; every
option of the built-in one is kept.

With kedro-airflow installed (the ``airflow`` extra), ``kedro airflow create`` is the plugin's
command with this project's defaults (a project's commands win over a plugin's): the DAG
template ``airflow_dag.j2`` beside this file, tasks grouped by memory (the nodes joined by an
in-memory dataset run in one task), and the project folder written into the DAG.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.io.core import DatasetNotFoundError

from hindsight_rl.core.errors import HindsightRLError, project_error_in


def user_error(error: BaseException | None) -> HindsightRLError | None:
    """The :class:`HindsightRLError` behind ``error``, if any (Kedro wraps dataset errors
    in its own ``DatasetError``)."""
    return project_error_in(error)


def _explained(callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except DatasetNotFoundError as error:  # e.g. --load-versions naming no dataset
            raise click.ClickException(str(error)) from None
        except Exception as error:
            explained = user_error(error)
            if explained is None:
                raise
            raise click.ClickException(str(explained)) from None

    return wrapper


run = copy.copy(kedro_run)
run.callback = _explained(kedro_run.callback)


@click.group(name="hindsight-rl")
def cli() -> None:
    """Project commands."""


cli.add_command(run)


def _project_airflow_create(create: click.Command) -> click.Command:
    """kedro-airflow's ``create`` with the project's template and grouping as defaults, and
    ``--params project_path=<this project>`` unless given (the folder a worker runs in)."""
    defaults = {"jinja_file": str(Path(__file__).with_name("airflow_dag.j2")),
                "node_grouping": "memory"}
    command = copy.copy(create)
    command.params = [copy.copy(param) for param in create.params]
    for param in command.params:
        if param.name in defaults:
            param.default = defaults[param.name]

    @functools.wraps(create.callback)
    def callback(*args: Any, params: dict[str, Any], **kwargs: Any) -> Any:
        metadata = click.get_current_context().obj
        params = {"project_path": str(metadata.project_path.resolve()), **params}
        return create.callback(*args, params=params, **kwargs)

    command.callback = callback
    return command


try:
    from kedro_airflow.plugin import create as _airflow_create
except ImportError:  # the airflow extra is not installed: no `kedro airflow` command
    pass
else:
    @cli.group(name="airflow")
    def airflow() -> None:
        """Run project with Airflow (kedro-airflow, with hindsight-rl's DAG template)"""

    airflow.add_command(_project_airflow_create(_airflow_create))


@cli.command(name="runs")
@click.option("--data", "data_root", default="data", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="the project's data folder (globals.yml's data_root)")
def runs(data_root: Path) -> None:
    """Every run in the data folder, newest first: status, pipelines, and per target its
    verdict and report."""
    from hindsight_rl.runs import main as list_runs

    list_runs([str(data_root)])
