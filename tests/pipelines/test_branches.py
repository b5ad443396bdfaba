"""The DAG's shape (settings.py): structure that no parameter changes, and every name made
from it in one place."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hindsight_rl.core.config import ConfigError, DQNConfig, ProjectConfig, from_mapping
from hindsight_rl.pipeline_registry import register_pipelines
from hindsight_rl.pipelines import target
from hindsight_rl.pipelines.branches import (
    DagShape,
    check_source_actions,
    dag_shape,
    node_costs,
    project_config,
    run_inputs,
    runs_by_arm,
    training_cost,
    training_nodes,
)

PARAMETERS = {"sources": {"cp": {"env": {"id": "CartPole-v1"}}},
              "targets": {"mc": {"env": {"id": "MountainCar-v0"}}}}
SHAPE = from_mapping(DagShape, {"targets": {"mc": {"sources": ["cp"], "seeds": [0, 1]}}})


def test_registration_reads_nothing_but_settings():
    """The same DAG from a bare interpreter in a folder with no project and no environment
    variables: create_pipeline() is a pure function of DAG_SHAPE."""
    code = ("import json, hindsight_rl.pipeline_registry as r; print(json.dumps("
            "{k: sorted(n.name for n in v.nodes) for k, v in r.register_pipelines().items()}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd="/", env={"PATH": "/usr/bin:/bin"})
    here = {name: sorted(node.name for node in pipeline.nodes)
            for name, pipeline in register_pipelines().items()}
    assert json.loads(result.stdout.strip().splitlines()[-1]) == here


def _target(**changes):
    return {"sources": ["cp"], "seeds": [0], **changes}


@pytest.mark.parametrize(("shape", "message"), [
    ({"targets": {}}, None),
    ({"targets": {"mc": _target(seeds=[])}},
     r"targets.mc.seeds: got \[\], expected a list of at least 1"),
    ({"targets": {"mc": _target(seeds=[0, 0])}},
     r"targets.mc.seeds: got \[0, 0\], expected distinct values"),
    ({"targets": {"mc": _target(seeds=[-1])}},
     r"targets.mc.seeds\[0\]: got -1, expected an integer in \[0, "),
    ({"targets": {"mc": _target(seeds="0, 1")}}, "targets.mc.seeds: got '0, 1', expected a list"),
    ({"targets": {"mc": None}}, "targets.mc: got None, expected a mapping"),
    ({"targets": {"mc": [0, 1]}}, r"targets.mc: got \[0, 1\], expected a mapping"),
    ({"targets": {"mc": _target(sources=[])}}, "targets.mc.sources: got"),
    ({"targets": {"mc": _target(sources=["cp", "cp"])}}, "targets.mc.sources: got"),
    ({"targets": {"m.c": _target()}}, "targets.m.c"),
    ({"targets": {"mc": _target()}, "seeds_per_node": 0}, "seeds_per_node: got 0"),
    ({"targets": {"mc": _target()}, "transfer_suite": {"mc": _target()}},
     "transfer_suite.mc: got 'mc', expected a name of its own"),
    ({"targets": {"mc": _target()}, "ablation": {"targets": {"cp": ["scratch"]}}},
     "ablation.targets.cp: got 'cp', expected one of the targets"),
    ({"targets": {"big": _target(stepping_stones=["small"]), "small": _target()}},
     "targets.big.stepping_stones: got 'small', expected a target listed before 'big' in "
     "targets"),
    ({"targets": {"mc": _target(stepping_stones=["mc"])}}, "targets.mc.stepping_stones: got"),
    ({"targets": {"small": _target()}, "minigrid": {"big": _target(stepping_stones=["small"])}},
     "minigrid.big.stepping_stones: got 'small', expected a target listed before 'big' in "
     "minigrid"),
    ({"targets": {"mc": _target(stepping_stones=["a", "a"])}}, "targets.mc.stepping_stones: got"),
])
def test_a_malformed_shape_names_its_key_in_settings(shape, message):
    if message is None:
        assert from_mapping(DagShape, shape).targets == {}
        return
    with pytest.raises(ConfigError, match=f"DAG_SHAPE in src/hindsight_rl/settings.py.{message}"):
        from_mapping(DagShape, shape, "DAG_SHAPE in src/hindsight_rl/settings.py")


@pytest.mark.parametrize(("parameters", "message"), [
    ({**PARAMETERS, "targets": {**PARAMETERS["targets"], "cp": {"env": {"id": "CartPole-v1"}}}},
     "targets.cp: the DAG has no branch for this target"),
    ({**PARAMETERS, "sources": {}}, "sources.cp: required: a target"),
    ({**PARAMETERS, "sources": {**PARAMETERS["sources"], "ac": {"env": {"id": "Acrobot-v1"}}}},
     "sources.ac: no target in DAG_SHAPE"),
    ({**PARAMETERS, "targets": {}}, "targets.mc: required"),
    ({**PARAMETERS, "targets": {"mc": {"env": {"id": "MountainCar-v0"}, "seeds": [0]}}},
     "targets.mc.seeds: seeds are the DAG's structure"),
    ({**PARAMETERS, "runtime": {"seeds_per_node": 1}}, "runtime.seeds_per_node: the grouping"),
    ({**PARAMETERS, "evaluation": {"seed": 21}},
     r"targets.mc.seeds\[1\]: got 1, expected a seed outside the evaluation block \[1, "),
    ({**PARAMETERS, "evaluation": {"seed": 1}}, "evaluation.seed: got 1, expected an integer >= "
                                                "probe_episodes"),
])
def test_parameters_give_values_to_exactly_the_shapes_branches(parameters, message):
    with pytest.raises(ConfigError, match=message):
        project_config(parameters, SHAPE)


def test_a_stepping_stone_target_offers_every_seeds_fine_tuned_policy_to_the_next():
    shape = from_mapping(DagShape, {"targets": {
        "small": _target(seeds=[0, 1]), "big": _target(stepping_stones=["small"])}})
    assert shape.sources_of(shape.targets) == ["cp"], "only cp is pretrained"
    assert shape.candidates(shape.targets["big"]) == {
        "cp": "sources.cp.pretrained_policy", "small.seed_0": "small.seed_0.finetuned_policy",
        "small.seed_1": "small.seed_1.finetuned_policy"}
    (plan,) = [node for node in target.create_pipeline(shape, shape.targets).nodes
               if node.name == "big.plan_transfer"]
    assert plan.inputs == ["params:targets.big", "params:evaluation",
                           "sources.cp.pretrained_policy", "small.seed_0.finetuned_policy",
                           "small.seed_1.finetuned_policy"]
    stones_only = from_mapping(DagShape, {"targets": {
        "small": _target(), "big": _target(sources=[], stepping_stones=["small"])}})
    assert stones_only.candidates(stones_only.targets["big"]) == {
        "small.seed_0": "small.seed_0.finetuned_policy"}
    parameters = {**PARAMETERS, "targets": {"small": {"env": {"id": "CartPole-v1"}},
                                            "big": {"env": {"id": "CartPole-v1"}}}}
    assert set(project_config(parameters, shape).targets) == {"small", "big"}
    with pytest.raises(ConfigError, match="sources.small: no target in DAG_SHAPE"):
        project_config({**parameters, "sources": {**PARAMETERS["sources"],
                                                  "small": {"env": {"id": "CartPole-v1"}}}},
                       shape)


def test_relabelling_arms_need_a_goal_on_every_target_the_shape_runs_them_on():
    shape = from_mapping(DagShape, {"targets": {"mc": _target()},
                                    "ablation": {"targets": {"mc": ["her"]}}})
    ablation = {"budgets": {"mc": 5000}, "arms": {"her": {"her_k": 4}}}
    with pytest.raises(ConfigError, match="ablation.arms.her.her_k: got 4, but mc has no "
                                          "env.goal"):
        project_config({**PARAMETERS, "ablation": ablation}, shape)
    goal = {"env": {"id": "MountainCar-v0", "goal": {"achieved": [0], "desired": [0.5]}}}
    config = project_config({**PARAMETERS, "targets": {"mc": goal}, "ablation": ablation}, shape)
    assert config.ablation.arms["her"].her_k == 4


def test_every_training_node_has_a_cost_and_only_those():
    shape = dag_shape()
    registered = {node.name for pipeline in register_pipelines().values()
                  for node in pipeline.nodes if node.func.__name__ in
                  ("finetune", "train_scratch", "train_arm")}
    assert registered == set(training_nodes(shape))


def test_node_costs_follow_budgets():
    shape = from_mapping(DagShape, {"targets": {"mc": _target(seeds=[0, 1])},
                                    "seeds_per_node": 1})
    costs = node_costs(shape, project_config(PARAMETERS, shape))
    assert set(costs) == {"mc.seed_0.finetune", "mc.seed_0.train_scratch",
                          "mc.seed_1.finetune", "mc.seed_1.train_scratch"}
    assert costs["mc.seed_0.finetune"] < costs["mc.seed_0.train_scratch"]  # trunk frozen
    assert costs["mc.seed_0.train_scratch"] == training_cost(DQNConfig(), 50_000, 1, False)


def test_run_inputs_are_read_back_by_arm_and_seed():
    names = run_inputs((3, 5))
    assert names[:4] == ["seed_3.finetuned_policy", "seed_3.finetune_history",
                         "seed_3.scratch_policy", "seed_3.scratch_history"]
    runs = runs_by_arm((3, 5), tuple(names))
    assert runs["scratch"][5] == ("seed_5.scratch_policy", "seed_5.scratch_history")
    assert runs["finetuned"][3] == ("seed_3.finetuned_policy", "seed_3.finetune_history")


@pytest.mark.parametrize(("source", "source_actions", "message"), [
    ({"env": {"id": "MountainCar-v0"}}, [[-1.0], [1.0]],
     r"targets.mcc.source_actions: got 2 actions of shape \(1,\), expected one per source "
     r"action \(3\) of 1 entries each \(source 'src'\)"),
    ({"env": {"id": "MountainCar-v0"}}, [[-1.0], [0.0], [2.0]],
     r"expected actions within the target's bounds \[-1.0\]..\[1.0\]"),
    ({"env": {"id": "Pendulum-v1"}, "algorithm": "sac"}, [[-1.0], [0.0], [1.0]],
     "the source is an actor with continuous actions of its own"),
])
def test_source_actions_must_fit_the_source_and_the_target_before_any_node(
        source, source_actions, message):
    shape = from_mapping(DagShape, {"targets": {}, "continuous": {
        "mcc": {"sources": ["src"], "seeds": [0]}}})
    config = from_mapping(ProjectConfig, {
        "sources": {"src": source},
        "targets": {"mcc": {"env": {"id": "MountainCarContinuous-v0"}, "algorithm": "sac",
                            "source_actions": source_actions,
                            "collect": {"policy": "epsilon_greedy"}}}})
    with pytest.raises(ConfigError, match=message):
        check_source_actions(config, shape)
