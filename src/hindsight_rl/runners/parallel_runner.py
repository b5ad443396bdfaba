"""Kedro's ParallelRunner, starting the ready node with the longest road ahead first.

Kedro's own runner hands every ready node to its process pool at once, in the order a set
of nodes happens to iterate (string hashes, so a new order every run). When the training
nodes differ in cost, that order decides the run's length: on two cores, when the default
DAG's two MountainCar training nodes queue behind each other the run takes about a fifth
longer (``benchmarks/RESULTS.md``).

This runner keeps nodes back until a worker is free and then starts the one whose critical
path (its own cost plus the costliest chain of nodes after it) is longest: the classic
list-scheduling rule, which starts a cheap collection node before an expensive training
node that does not need it. A training node's cost is estimated from its budget
(:func:`hindsight_rl.pipelines.branches.node_costs`, from the DAG's shape and the run's
parameters); every other node counts 1.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, wait
from itertools import chain

from kedro.io import SharedMemoryCatalogProtocol
from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node
from kedro.runner import ParallelRunner as KedroParallelRunner
from kedro.runner.task import Task
from pluggy import PluginManager

from hindsight_rl.pipelines.branches import dag_shape, node_costs, project_config
from hindsight_rl.runners.completion import record_finished


def critical_paths(pipeline: Pipeline, costs: Mapping[str, float]) -> dict[Node, float]:
    """Each node's cost (``costs`` by node name, 1 if absent) plus the costliest chain of
    its descendants."""
    children: dict[Node, set[Node]] = {node: set() for node in pipeline.nodes}
    for node, parents in pipeline.node_dependencies.items():
        for parent in parents:
            children[parent].add(node)

    @functools.cache
    def path(node: Node) -> float:
        own = max(1.0, costs.get(node.name, 1.0))
        return own + max((path(child) for child in children[node]), default=0.0)

    return {node: path(node) for node in pipeline.nodes}


def run_costs(catalog: SharedMemoryCatalogProtocol) -> dict[str, float]:
    """Training nodes' estimated costs for this run: the DAG's shape with the run's
    parameters (already checked when the session started)."""
    shape = dag_shape()
    return node_costs(shape, project_config(catalog.load("parameters"), shape))


class ParallelRunner(KedroParallelRunner):
    """``kedro run --runner hindsight_rl.runners.ParallelRunner``: Kedro's ParallelRunner
    (same processes, datasets and hooks), longest critical path first."""

    def _run(self, pipeline: Pipeline, catalog: SharedMemoryCatalogProtocol,  # type: ignore[override]
             hook_manager: PluginManager | None = None, run_id: str | None = None) -> None:
        self._validate_catalog(catalog)
        self._validate_nodes(pipeline.nodes)
        self._set_manager_datasets(catalog)
        load_counts = Counter(chain.from_iterable(n.inputs for n in pipeline.nodes))
        dependencies = pipeline.node_dependencies
        priority = critical_paths(pipeline, run_costs(catalog))
        todo, done_nodes, futures = set(dependencies), set(), set()
        workers = self._get_required_workers_count(pipeline)
        with self._get_executor(workers) as executor:
            while todo or futures:
                ready = sorted((n for n in todo if dependencies[n] <= done_nodes),
                               key=lambda n: (-priority[n], n.name))
                for node in ready[:workers - len(futures)]:
                    todo.discard(node)
                    # Workers build their own hook manager, as under Kedro's runner.
                    task = Task(node=node, catalog=catalog, is_async=self._is_async,
                                run_id=run_id, parallel=True)
                    futures.add(executor.submit(task))
                if not futures:
                    raise RuntimeError(f"nodes {sorted(n.name for n in todo)} can never run: "
                                       "their inputs are never produced")
                finished, futures = wait(futures, return_when=FIRST_COMPLETED)
                record_finished(self, finished, pipeline, catalog, done_nodes, load_counts)
