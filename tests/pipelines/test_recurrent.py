"""The recurrent pipeline end to end on tiny budgets (conf/smoke): CartPole-v1 with its
velocities hidden, a gru network whose trunk and head come from the CartPole MLP source,
with its hindsight dataset, both arms, evaluation and report; its files play in numpy."""

from __future__ import annotations

import json

import numpy as np
import torch
from kedro.framework.project import pipelines

from hindsight_rl import settings
from hindsight_rl.core.policy_file import NumpyPolicy, policy_from_bytes
from tests.pipelines.conftest import latest, run_session

TARGETS = settings.DAG_SHAPE["recurrent"]


def test_a_gru_network_takes_the_cartpole_trunk_and_is_judged_from_its_file(project):
    names = {node.name for node in pipelines["recurrent"].nodes}
    assert {"sources.cartpole.pretrain", "cartpole_novel.seeds_0_1_2.finetune"} <= names
    assert not {n for n in names if n.startswith(("cartpole_long_pole", "doorkey", "pendulum"))}
    run_session(project, pipeline_name="recurrent")

    plan = json.loads(latest(project, "data/03_primary/cartpole_novel/transfer_plan.json")
                      .read_text())
    assert plan["parts"] == ["trunk", "head"], "a gru encoder of its own; the rest fits"
    source = policy_from_bytes(latest(
        project, "data/06_models/sources/cartpole/pretrained_policy.safetensors").read_bytes())
    for target in TARGETS:
        metrics = json.loads(latest(project, f"data/08_reporting/{target}/"
                                             "transfer_metrics.json").read_text())
        assert set(metrics["arms"]) == {"finetuned", "scratch"}
        data = latest(project, f"data/06_models/{target}/seed_0/finetuned_policy.safetensors")
        finetuned = policy_from_bytes(data.read_bytes())
        assert finetuned.network.recurrent and finetuned.network.obs_dim == 2
        assert finetuned.provenance["parent_sha256"] is not None
        assert source.network.trunk[0].weight.shape == finetuned.network.trunk[0].weight.shape
        player = NumpyPolicy(data.read_bytes()).player()
        assert NumpyPolicy(data.read_bytes()).document["format_version"] == 4
        episode = np.random.default_rng(0).normal(size=(6, 1, 2)).astype(np.float32)
        player.start(1)
        played = np.concatenate([player.q_values(obs) for obs in episode])
        with torch.no_grad():
            q = finetuned.network.sequence(torch.from_numpy(episode).transpose(0, 1)[None])[0]
        assert np.allclose(played, q[0, 0].numpy(), atol=1e-5)
