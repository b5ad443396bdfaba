"""Project pipelines: the four stages, and all of them as ``__default__``."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from hindsight_rl.pipelines import evaluate, finetune, source, target


def register_pipelines() -> dict[str, Pipeline]:
    stages = {"source": source.create_pipeline(), "target": target.create_pipeline(),
              "finetune": finetune.create_pipeline(), "evaluate": evaluate.create_pipeline()}
    stages["__default__"] = sum(stages.values(), Pipeline([]))
    return stages
