"""The continuous pipeline end to end on tiny budgets (conf/smoke): SAC targets from a DQN
source (MountainCar-v0 → MountainCarContinuous-v0) and from a SAC one (Pendulum-v1 → a
heavier, longer pole), each with its hindsight dataset, both arms, evaluation and report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from kedro.framework.project import pipelines

from hindsight_rl import settings
from hindsight_rl.core.policy_file import NumpyPolicy, policy_from_bytes
from tests.pipelines.conftest import latest, run_session

TARGETS = settings.DAG_SHAPE["continuous"]


def test_both_continuous_targets_are_planned_trained_and_judged(project):
    names = {node.name for node in pipelines["continuous"].nodes}
    assert {"sources.mountaincar.pretrain", "sources.pendulum.pretrain"} <= names
    assert not {n for n in names if n.startswith(("cartpole_long_pole", "suite_"))}
    run_session(project, pipeline_name="continuous")

    pendulum = latest(project, "data/06_models/sources/pendulum/pretrained_policy.safetensors")
    player = NumpyPolicy(pendulum.read_bytes())
    assert player.kind == "squashed_gaussian"
    action = player.act(np.array([1.0, 0.0, 0.0]))
    assert action.shape == (1,) and -2.0 <= action[0] <= 2.0
    assert player.document["env"]["reward_threshold"] == -200.0

    plan = json.loads(latest(project, "data/03_primary/mountaincar_continuous/"
                                      "transfer_plan.json").read_text())
    assert plan["parts"] == ["encoder", "trunk"] and plan["frozen"] == ["trunk"]
    assert plan["teacher"] is False
    heavy = json.loads(latest(project, "data/03_primary/pendulum_heavy/transfer_plan.json")
                       .read_text())
    assert heavy["parts"] == ["encoder", "trunk", "head"]
    beats_chance = heavy["probes"]["pendulum"]["jumpstart"] > heavy["random_return"]
    assert heavy["teacher"] is beats_chance and heavy["frozen"] == ([] if beats_chance
                                                                    else ["trunk"])

    dataset = pd.read_parquet(latest(project, "data/03_primary/mountaincar_continuous/"
                                              "hindsight_dataset.parquet"))
    assert "action" not in dataset.columns
    assert set(np.unique(dataset["action_0"])) <= {-1.0, 0.0, 1.0}, \
        "the DQN source acts through source_actions"
    assert {"return_to_go", "rtg_valid"} <= set(dataset.columns)

    for target in TARGETS:
        metrics = json.loads(latest(project, f"data/08_reporting/{target}/"
                                             "transfer_metrics.json").read_text())
        assert set(metrics["arms"]) == {"finetuned", "scratch"}
        assert metrics["budget_env_steps"] == 500
        for seed in TARGETS[target]["seeds"]:
            for arm in ("finetuned", "scratch"):
                policy = policy_from_bytes(latest(
                    project, f"data/06_models/{target}/seed_{seed}/{arm}_policy.safetensors"
                ).read_bytes())
                assert policy.network.action_dim == 1
        finetuned = policy_from_bytes(latest(
            project, f"data/06_models/{target}/seed_0/finetuned_policy.safetensors").read_bytes())
        assert finetuned.provenance["parent_sha256"] is not None
    trunk = policy_from_bytes(latest(
        project, "data/06_models/mountaincar_continuous/seed_0/finetuned_policy.safetensors"
    ).read_bytes()).network.trunk.state_dict()
    source = policy_from_bytes(latest(
        project, "data/06_models/sources/mountaincar/pretrained_policy.safetensors").read_bytes())
    assert all(np.array_equal(value.numpy(), source.network.trunk.state_dict()[key].numpy())
               for key, value in trunk.items()), "the frozen trunk is the DQN source's"
