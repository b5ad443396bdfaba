"""What a runner does when nodes it submitted finish, shared by our runners."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from kedro.io import CatalogProtocol
from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node
from kedro.runner import AbstractRunner

from hindsight_rl.core.errors import HindsightRLError


def record_finished(runner: AbstractRunner, finished: Iterable[Any], pipeline: Pipeline,
                    catalog: CatalogProtocol, done_nodes: set[Node],
                    load_counts: Counter) -> None:
    """Mark each finished future's node done, log it and release the datasets nothing else
    needs; on a node's failure, suggest how to resume and re-raise (as Kedro's runners do).
    A future may also return a project error its worker caught: it is raised here."""
    for future in finished:
        try:
            node = future.result()
            if isinstance(node, HindsightRLError):
                raise node
        except Exception:
            runner._suggest_resume_scenario(pipeline, done_nodes, catalog)
            raise
        done_nodes.add(node)
        runner._logger.info("Completed node: %s", node.name)
        runner._logger.info("Completed %d out of %d tasks", len(done_nodes),
                            len(pipeline.nodes))
        runner._release_datasets(node, catalog, load_counts, pipeline)
