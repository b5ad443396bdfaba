"""Tuning DAG (``kedro run --pipeline tune``): a fresh study, ``tune.worker_<i>`` nodes
running their shares of the trials side by side against its storage (how many is
``DAG_SHAPE["tune"]`` in settings), the study's table and best settings, and those settings
against the target's current ones on seeds the search never saw."""

from kedro.pipeline import Node, Pipeline

from hindsight_rl.pipelines.branches import DagShape, with_arguments
from hindsight_rl.pipelines.tune.nodes import (
    check_best,
    check_defaults,
    compare,
    create_study,
    report_study,
    run_trials,
)

SETTINGS = ["params:tune", "params:targets", "params:evaluation", "params:runtime"]
"""What a node that trains reads (``runtime``: its torch threads, TorchThreadsHook)."""


def create_pipeline(shape: DagShape) -> Pipeline:
    workers = shape.tune.workers
    done = [f"worker_{i}_trials" for i in range(workers)]
    nodes = [Node(create_study, inputs=["params:tune", "params:targets"], outputs="study",
                  name="create_study")]
    nodes += [Node(with_arguments(run_trials, worker=i, workers=workers),
                   inputs=["study", *SETTINGS], outputs=done[i], name=f"worker_{i}")
              for i in range(workers)]
    nodes += [Node(report_study, inputs=["study", "params:tune", *done],
                   outputs=["trials", "best_parameters", "best_settings"], name="report"),
              Node(check_defaults, inputs=SETTINGS, outputs="defaults_check",
                   name="check_defaults"),
              Node(check_best, inputs=["best_settings", *SETTINGS], outputs="best_check",
                   name="check_best"),
              Node(compare, inputs=["defaults_check", "best_check", "study", "params:tune"],
                   outputs="comparison", name="compare")]
    return Pipeline(nodes, namespace="tune", parameters=set(SETTINGS))
