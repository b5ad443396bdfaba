"""Project pipelines: the four stages, all of them as ``__default__``, ``retrain`` and
``ablation``."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from hindsight_rl.pipelines import ablation, evaluate, finetune, retrain, source, target


def register_pipelines() -> dict[str, Pipeline]:
    stages = {"source": source.create_pipeline(), "target": target.create_pipeline(),
              "finetune": finetune.create_pipeline(), "evaluate": evaluate.create_pipeline()}
    stages["__default__"] = sum(stages.values(), Pipeline([]))
    fine_tuning_only = Pipeline([node for node in stages["finetune"].nodes
                                 if node.name.endswith(".finetune")])
    stages["retrain"] = stages["target"] + fine_tuning_only + retrain.create_pipeline()
    stages["ablation"] = ablation.create_pipeline()
    return stages
