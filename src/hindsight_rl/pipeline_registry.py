"""Project pipelines: the four stages, all of them as ``__default__``, ``retrain``,
``ablation``, ``transfer_suite``, ``continuous``, ``minigrid``, ``recurrent``, ``tune`` and
``export_minari``, built
from the DAG's shape (``DAG_SHAPE`` in settings) and nothing else."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from hindsight_rl.pipelines import (
    ablation,
    evaluate,
    export,
    finetune,
    retrain,
    source,
    suite,
    target,
    tune,
)
from hindsight_rl.pipelines.branches import DagShape, TargetShape, dag_shape


def every_stage(shape: DagShape, targets: dict[str, TargetShape]) -> Pipeline:
    """Source, target, finetune and evaluate stages for ``targets`` and their sources."""
    return (source.create_pipeline(shape.sources_of(targets))
            + target.create_pipeline(shape, targets)
            + finetune.create_pipeline(shape, targets) + evaluate.create_pipeline(targets))


def register_pipelines() -> dict[str, Pipeline]:
    shape = dag_shape()
    targets = shape.targets
    stages = {"source": source.create_pipeline(shape.sources_of(targets)),
              "target": target.create_pipeline(shape, targets),
              "finetune": finetune.create_pipeline(shape, targets),
              "evaluate": evaluate.create_pipeline(targets)}
    stages["__default__"] = sum(stages.values(), Pipeline([]))
    fine_tuning_only = Pipeline([node for node in stages["finetune"].nodes
                                 if node.func.__name__ == "finetune"])
    stages["retrain"] = stages["target"] + fine_tuning_only + retrain.create_pipeline(targets)
    stages["ablation"] = ablation.create_pipeline(shape)
    stages["transfer_suite"] = suite.create_pipeline(shape)
    stages["continuous"] = every_stage(shape, shape.continuous)
    stages["minigrid"] = every_stage(shape, shape.minigrid)
    stages["recurrent"] = every_stage(shape, shape.recurrent)
    stages["tune"] = tune.create_pipeline(shape)
    stages["export_minari"] = export.create_pipeline(targets)
    return stages
