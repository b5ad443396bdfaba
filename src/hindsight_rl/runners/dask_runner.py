"""Run the pipeline on a Dask cluster: every node whose inputs are ready becomes a task on a
``dask.distributed`` client, so independent branches (targets, seeds) train on as many
workers as the cluster has.

Written against Kedro 1.7's runner API (Kedro's documented Dask runner predates 1.0 and calls
catalog methods that no longer exist). Data between nodes that the catalog does not persist
travels as datasets published on the Dask scheduler; everything else goes through the
catalog's own (fsspec) paths, which workers on other machines must be able to reach.
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from itertools import chain
from typing import Any

import kedro.framework.project as kedro_project
from kedro.io import AbstractDataset, CatalogProtocol, MemoryDataset
from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node
from kedro.runner import AbstractRunner
from kedro.runner.task import Task
from pluggy import PluginManager

from hindsight_rl.core.errors import HindsightRLError, project_error_in
from hindsight_rl.runners.completion import record_finished


class _DaskDataset(AbstractDataset):
    """An in-memory dataset shared through the Dask scheduler under its catalog name."""

    def __init__(self, name: str) -> None:
        self._name = name

    def load(self) -> Any:
        from distributed import get_client  # noqa: PLC0415

        return get_client().get_dataset(self._name)

    def save(self, data: Any) -> None:
        from distributed import get_client  # noqa: PLC0415

        get_client().publish_dataset(data, name=self._name, override=True)

    def _exists(self) -> bool:
        from distributed import get_client  # noqa: PLC0415

        return self._name in get_client().list_datasets()

    def _release(self) -> None:
        from distributed import get_client  # noqa: PLC0415

        client = get_client()
        if self._name in client.list_datasets():
            client.unpublish_dataset(self._name)

    def _describe(self) -> dict[str, Any]:
        return {"name": self._name}


@functools.cache
def _worker_hook_manager(package_name: str) -> PluginManager:
    """The project's settings and hooks, set up once per worker process (as Kedro's
    ``ParallelRunner`` does in its subprocesses)."""
    kedro_project.configure_project(package_name)
    return Task._run_node_synchronization()  # hooks from the project's settings


def _run_node_on_worker(node: Node, catalog: CatalogProtocol, run_id: str | None,
                        package_name: str) -> Node | HindsightRLError:
    """Executed by a Dask worker. A project error (bad input, explained in its message) is
    returned, not raised: the runner raises it in the client, and the worker does not log it
    as a crash with a traceback ("Compute Failed"), which a bug still gets."""
    try:
        return Task(node=node, catalog=catalog, is_async=False, run_id=run_id,
                    hook_manager=_worker_hook_manager(package_name)).execute()
    except Exception as error:
        project = project_error_in(error)
        if project is None:
            raise
        return project


class DaskRunner(AbstractRunner):
    """Submits each ready node to a ``dask.distributed`` client.

    Connects to the scheduler at ``DASK_SCHEDULER_ADDRESS`` when it is set, and otherwise
    starts a ``LocalCluster`` of single-threaded worker processes (one per core unless
    ``cluster_args`` says otherwise), closed when the run ends::

        kedro run --runner hindsight_rl.runners.DaskRunner
        DASK_SCHEDULER_ADDRESS=tcp://scheduler:8786 \\
            kedro run --runner hindsight_rl.runners.DaskRunner
    """

    def __init__(self, is_async: bool = False, cluster_args: dict[str, Any] | None = None,
                 client_args: dict[str, Any] | None = None) -> None:
        super().__init__(is_async=is_async)
        self._cluster_args = {"threads_per_worker": 1, "processes": True,
                              **(cluster_args or {})}
        self._client_args = client_args or {}

    def _get_executor(self, max_workers: int) -> None:
        """Kedro's executor hook is not used: nodes go to the Dask client in :meth:`_run`."""
        return None

    def _run(self, pipeline: Pipeline, catalog: CatalogProtocol,
             hook_manager: PluginManager | None = None, run_id: str | None = None) -> None:
        from distributed import Client, LocalCluster, wait  # noqa: PLC0415

        address = os.environ.get("DASK_SCHEDULER_ADDRESS")
        cluster = None if address else self._local_cluster(LocalCluster)
        client = Client(address or cluster, **self._client_args)
        try:
            self._share_in_memory_datasets(pipeline, catalog)
            self._submit_when_ready(pipeline, catalog, client, wait, run_id)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()

    def _local_cluster(self, local_cluster: type) -> Any:
        """A LocalCluster tuned for training loops: Dask's default
        ``MALLOC_TRIM_THRESHOLD_=65536`` makes glibc hand every freed batch tensor back to
        the OS (a DQN training loop is much slower then: ``benchmarks/RESULTS.md``), and its
        statistical profiler interrupts a Python-heavy loop; both are off in the clusters we
        start."""
        import dask  # noqa: PLC0415

        defaults = dask.config.get("distributed.nanny.pre-spawn-environ")
        environ = {k: v for k, v in defaults.items() if k != "MALLOC_TRIM_THRESHOLD_"}
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ,
                              "distributed.worker.profile.enabled": False}):
            return local_cluster(**self._cluster_args)

    @staticmethod
    def _share_in_memory_datasets(pipeline: Pipeline, catalog: CatalogProtocol) -> None:
        """Nodes on different workers cannot share a process's memory: in-memory datasets
        (other than parameters) go through the scheduler instead."""
        for name in pipeline.datasets():
            if name == "parameters" or name.startswith("params:"):
                continue
            if isinstance(catalog.get(name, fallback_to_runtime_pattern=True), MemoryDataset):
                catalog[name] = _DaskDataset(name)

    def _submit_when_ready(self, pipeline: Pipeline, catalog: CatalogProtocol, client: Any,
                           wait: Any, run_id: str | None) -> None:
        load_counts = Counter(chain.from_iterable(n.inputs for n in pipeline.nodes))
        dependencies = pipeline.node_dependencies
        todo, done_nodes, futures = set(dependencies), set(), set()
        while todo or futures:
            ready = {node for node in todo if dependencies[node] <= done_nodes}
            todo -= ready
            futures |= {client.submit(_run_node_on_worker, node, catalog, run_id,
                                      kedro_project.PACKAGE_NAME,
                                      key=f"{node.name}-{run_id}", pure=False)
                        for node in ready}
            if not futures:
                raise RuntimeError(f"DaskRunner: nodes {sorted(n.name for n in todo)} can "
                                   "never run; their inputs are never produced")
            finished, futures = wait(futures, return_when="FIRST_COMPLETED")
            record_finished(self, finished, pipeline, catalog, done_nodes, load_counts)
