"""Project pipelines: the four stages, all of them as ``__default__``, ``retrain`` and
``ablation``, built from the DAG's shape (``DAG_SHAPE`` in settings) and nothing else."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from hindsight_rl.pipelines import ablation, evaluate, finetune, retrain, source, target
from hindsight_rl.pipelines.branches import dag_shape


def register_pipelines() -> dict[str, Pipeline]:
    shape = dag_shape()
    stages = {"source": source.create_pipeline(), "target": target.create_pipeline(shape),
              "finetune": finetune.create_pipeline(shape),
              "evaluate": evaluate.create_pipeline(shape)}
    stages["__default__"] = sum(stages.values(), Pipeline([]))
    fine_tuning_only = Pipeline([node for node in stages["finetune"].nodes
                                 if node.func.__name__ == "finetune"])
    stages["retrain"] = stages["target"] + fine_tuning_only + retrain.create_pipeline(shape)
    stages["ablation"] = ablation.create_pipeline(shape)
    return stages
