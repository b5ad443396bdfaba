"""``kedro run --pipeline retrain``: champion/challenger with the decision recorded."""

import json

from tests.pipelines.conftest import run_session, versions

CHAMPION = "data/06_models/mountaincar/champion_policy.safetensors"
PROMOTION = "data/08_reporting/mountaincar/promotion.json"


def _decision(project, index):
    return json.loads(next(versions(project, PROMOTION)[index].glob("*.json")).read_text())


def _bytes(folder):
    return next(folder.glob("*.safetensors")).read_bytes()


def test_retrain_promotes_only_a_better_challenger(project):
    run_session(project, pipeline_names=["source"])
    run_session(project, pipeline_names=["retrain"])
    first = _decision(project, 0)
    assert first["promoted"] and first["reason"] == "no champion yet"
    (champion,) = versions(project, CHAMPION)
    seed_policy = project / "data/06_models/mountaincar" / first["challenger"] / \
        "finetuned_policy.safetensors"
    assert _bytes(champion) == _bytes(versions(project, str(seed_policy.relative_to(project)))[0])

    run_session(project, pipeline_names=["retrain"],
                runtime_params={"evaluation": {"promotion_margin": 1e9}})
    second = _decision(project, 1)
    assert not second["promoted"] and second["champion_mean"] is not None
    old, new = versions(project, CHAMPION)
    assert _bytes(new) == _bytes(old), "a kept champion is saved again unchanged"
