"""The minigrid pipeline end to end on tiny budgets (conf/smoke): a convolutional DQN source
on MiniGrid-DoorKey-5x5-v0 carried whole to MiniGrid-DoorKey-6x6-v0 and, with the 6x6 room's
fine-tuned seeds as further candidates, to MiniGrid-DoorKey-8x8-v0 (the same 7×7 view), with
their hindsight datasets, both arms, evaluation and reports; its files play in numpy."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch
import yaml
from kedro.framework.project import pipelines

from hindsight_rl import settings
from hindsight_rl.core.policy_file import NumpyPolicy, policy_from_bytes, sha256_of
from tests.pipelines.conftest import latest, run_session

TARGETS = settings.DAG_SHAPE["minigrid"]


def test_the_doorkey_network_is_pretrained_carried_whole_and_judged(project):
    names = {node.name for node in pipelines["minigrid"].nodes}
    assert "sources.doorkey.pretrain" in names
    assert not {n for n in names if n.startswith(("cartpole_long_pole", "suite_", "pendulum"))}
    run_session(project, pipeline_name="minigrid")

    data = latest(project, "data/06_models/sources/doorkey/pretrained_policy.safetensors")
    source = policy_from_bytes(data.read_bytes())
    player = NumpyPolicy(data.read_bytes())
    assert player.document["format_version"] == (6 if player.temperature else 3)
    assert player.document["observation"]["image"] == [7, 7, 3]
    views = np.random.default_rng(0).integers(0, 11, (5, 147)).astype(np.float32)
    with torch.no_grad():
        torch_q = source.network(torch.from_numpy(views)[None])[0].numpy()
    assert np.allclose(player.q_values(views), torch_q, atol=1e-5)

    plan = json.loads(latest(project, "data/03_primary/doorkey_8x8/transfer_plan.json")
                      .read_text())
    assert plan["parts"] == ["encoder", "trunk", "head"], "the same view: everything fits"
    assert list(plan["probes"]) == ["doorkey", *(f"doorkey_6x6.seed_{s}" for s in (0, 1, 2))], \
        "the 6x6 room is a stepping stone: each of its fine-tuned seeds is a candidate"
    candidates = {
        "doorkey": "data/06_models/sources/doorkey/pretrained_policy.safetensors",
        **{f"doorkey_6x6.seed_{s}": f"data/06_models/doorkey_6x6/seed_{s}/"
                                     "finetuned_policy.safetensors" for s in (0, 1, 2)}}
    chosen = policy_from_bytes(latest(project, candidates[plan["source"]]).read_bytes())
    assert sha256_of(chosen) == plan["source_sha256"]
    for target in TARGETS:
        metrics = json.loads(latest(project, f"data/08_reporting/{target}/"
                                             "transfer_metrics.json").read_text())
        assert set(metrics["arms"]) == {"finetuned", "scratch"}
        assert metrics["budget_env_steps"] == 500
        for arm in metrics["arms"].values():  # success: reaching the goal square
            rates = [seed["success_rate"] for seed in arm["per_seed"].values()]
            assert all(0.0 <= rate <= 1.0 for rate in rates)
            assert arm["success_rate"]["mean"] == np.mean(rates)
            for seed in arm["per_seed"].values():  # only failed episodes can be stuck
                failed = round((1 - seed["success_rate"]) * metrics["eval_episodes"])
                assert 0 <= seed["stuck_episodes"] <= failed
        report = latest(project, f"data/08_reporting/{target}/transfer_report.md").read_text()
        assert "success rate IQM" in report
        stuck = [seed["stuck_episodes"] for arm in metrics["arms"].values()
                 for seed in arm["per_seed"].values()]
        assert ("stuck in a short cycle" in report) == any(stuck)
        finetuned = policy_from_bytes(latest(
            project, f"data/06_models/{target}/seed_0/finetuned_policy.safetensors"
        ).read_bytes())
        assert finetuned.network.image_shape == (7, 7, 3)
        assert finetuned.provenance["parent_sha256"] == json.loads(latest(
            project, f"data/03_primary/{target}/transfer_plan.json").read_text())["source_sha256"]


def test_conf_minigrid_her_carries_the_agents_cell_and_the_goal_square_with_her(project):
    """``--env minigrid_her``'s settings, over conf/smoke's budgets."""
    her = yaml.safe_load((project / "conf/minigrid_her/parameters.yml").read_text())
    run_session(project, runtime_params=her, pipeline_name="minigrid")
    rollouts = latest(project, "data/01_raw/sources/doorkey/source_rollouts.parquet")
    columns = pd.read_parquet(rollouts).columns
    assert {"obs_147", "obs_148", "goal_0", "goal_1"} <= set(columns)
    assert "obs_149" not in columns, "the goal is in its own columns, not the observation's"
    plan = json.loads(latest(project, "data/03_primary/doorkey_8x8/transfer_plan.json")
                      .read_text())
    assert plan["parts"] == ["encoder", "trunk", "head"], "the same inputs: everything fits"
    dataset = pd.read_parquet(latest(project,
                                     "data/03_primary/doorkey_8x8/hindsight_dataset.parquet"))
    assert (dataset[["goal_0", "goal_1"]].to_numpy() != 6.0).any(axis=1).any(), \
        "HER adds copies whose goal is a cell the agent reached"
    data = latest(project, "data/06_models/doorkey_8x8/seed_0/finetuned_policy.safetensors")
    player = NumpyPolicy(data.read_bytes())
    assert player.document["format_version"] == (6 if player.temperature else 5)
    assert player.document["goal"]["desired"] == [6.0, 6.0]
    cells = np.random.default_rng(1).integers(1, 7, (5, 2))
    obs = np.concatenate([np.random.default_rng(0).integers(0, 11, (5, 147)), cells], axis=1)
    with torch.no_grad():
        inputs = torch.from_numpy(np.concatenate([obs, np.full((5, 2), 6.0)], axis=1)
                                  .astype(np.float32))
        torch_q = policy_from_bytes(data.read_bytes()).network(inputs[None])[0].numpy()
    assert np.allclose(player.q_values(obs), torch_q, atol=1e-5)
