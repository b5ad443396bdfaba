"""Evaluate stage DAG: one ``evaluate`` per target, reading every seed's policies and
learning curves."""

from kedro.pipeline import Pipeline

from hindsight_rl.pipelines.branches import (
    DagShape,
    node_on_seed_branches,
    per_target,
    run_inputs,
    with_arguments,
)
from hindsight_rl.pipelines.evaluate.nodes import evaluate


def template(seeds: tuple[int, ...]) -> Pipeline:
    node = node_on_seed_branches(
        with_arguments(evaluate, seeds=seeds),
        inputs=["hindsight_dataset", "params:target", "params:evaluation", *run_inputs(seeds)],
        outputs=["transfer_metrics", "learning_curves", "hindsight_returns", "transfer_report",
                 "transfer_report_html"],
        name="evaluate")
    return Pipeline([node])


def create_pipeline(shape: DagShape) -> Pipeline:
    return per_target(shape, template)
