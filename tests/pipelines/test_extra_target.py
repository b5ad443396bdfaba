"""A Gymnasium env becomes a target from a branch in settings and its values in the parameters:
Acrobot-v1 as the README shows it."""

import json

import pytest
import yaml
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession

from hindsight_rl import settings
from tests.conftest import copy_project
from tests.pipelines.conftest import dag_shape

ACROBOT = {"env": {"id": "Acrobot-v1", "success": "terminated"},
           "collect": {"steps": 200, "policy": "boltzmann", "seed": 100},
           "dqn": {"total_steps": 400, "batch_size": 32, "learning_starts": 64,
                   "train_freq": 32, "gradient_steps": 2, "eval_interval": 200,
                   "eval_episodes": 1}}


def test_acrobot_added_to_the_shape_and_the_parameters_gets_its_own_branches(tmp_path):
    project = copy_project(tmp_path)
    parameters = project / "conf/smoke/parameters.yml"
    config = yaml.safe_load(parameters.read_text())
    config["targets"]["acrobot"] = ACROBOT
    parameters.write_text(yaml.safe_dump(config))
    targets = {**settings.DAG_SHAPE["targets"], "acrobot": {"sources": ["cartpole"], "seeds": [0]}}
    with pytest.MonkeyPatch.context() as patch, dag_shape(project, targets=targets):
        patch.chdir(project)
        names = {node.name for node in pipelines["__default__"].nodes}
        assert {"acrobot.plan_transfer", "acrobot.seed_0.finetune",
                "acrobot.seed_0.train_scratch", "acrobot.evaluate"} <= names
        with KedroSession.create(project_path=project, env="smoke") as session:
            session.run()
    (metrics,) = (project / "data/08_reporting/acrobot/transfer_metrics.json").glob("*/*.json")
    assert json.loads(metrics.read_text())["env_id"] == "Acrobot-v1"
    (policy,) = (project / "data/06_models/acrobot/seed_0/finetuned_policy.safetensors"
                 ).glob("*/*.safetensors")
    assert policy.stat().st_size > 0
