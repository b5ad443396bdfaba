"""The transfer suite end to end on tiny budgets (conf/smoke): every pair of DAG_SHAPE's
transfer_suite, its sources pretrained once, one report over all pairs."""

from __future__ import annotations

import json

from kedro.framework.project import pipelines

from hindsight_rl import settings
from tests.pipelines.conftest import latest, run_session

PAIRS = settings.DAG_SHAPE["transfer_suite"]


def test_every_pair_is_planned_trained_and_reported(project):
    names = {node.name for node in pipelines["transfer_suite"].nodes}
    assert {f"sources.{source}.pretrain" for source in ("cartpole", "mountaincar", "acrobot")} \
        <= names
    assert {f"{pair}.plan_transfer" for pair in PAIRS} <= names
    run_session(project, pipeline_name="transfer_suite")

    summary = json.loads(latest(project, "data/08_reporting/transfer_suite/summary.json")
                         .read_text())
    assert [row["pair"] for row in summary["pairs"]] == list(PAIRS)
    for row in summary["pairs"]:
        assert row["source"] in PAIRS[row["pair"]]["sources"]
        assert row["plan"].startswith(f"Transfer from {row['source']}")
        assert {"jumpstart.finetuned", "final_return.scratch", "auc.gain", "time_ratio"} <= set(row)
    plan = json.loads(latest(project, "data/03_primary/suite_mountaincar_gravity/"
                                      "transfer_plan.json").read_text())
    assert set(plan["probes"]) == {"cartpole", "mountaincar"}  # both candidates probed
    assert plan["probes"]["mountaincar"]["parts"] == ["encoder", "trunk", "head"]
    assert plan["probes"]["cartpole"]["parts"] == ["trunk"]
    report = latest(project, "data/08_reporting/transfer_suite/report.md").read_text()
    for source in ("cartpole", "mountaincar", "acrobot"):  # one table row per pair
        assert report.count(f"| {source} → ") == sum(
            row["source"] == source for row in summary["pairs"]), source
    assert latest(project, "data/08_reporting/transfer_suite/heatmap.png").stat().st_size > 0
