import numpy as np
import pandas as pd

from hindsight_rl.core.ablation import (
    JUDGE,
    arm_target,
    markdown_report,
    run_table,
    summarise_runs,
    verdicts,
)
from hindsight_rl.core.config import (
    ArmConfig,
    EnvConfig,
    EvalConfig,
    GoalConfig,
    TargetConfig,
)


def test_an_arm_changes_only_its_parts_and_the_budget():
    target = TargetConfig(env=EnvConfig(id="MountainCar-v0",
                                        goal=GoalConfig(achieved=(0,), desired=(0.5,))))
    run = arm_target(target, ArmConfig(frozen=(), rtg_coef=0.3, her_k=2), budget=7000)
    assert run.dqn.total_steps == 7000 and run.dqn.rtg_coef == 0.3
    assert run.finetune.frozen == () and run.her.k == 2
    assert run.dqn.learning_rate == target.dqn.learning_rate and run.env == target.env
    assert not run.finetune.teaches and run.finetune.unfreeze_patience is None
    taught = arm_target(target, ArmConfig(frozen=(), teacher_coef=2.0), budget=7000).finetune
    assert (taught.teacher_coef, taught.unsolved_teacher_coef) == (
        2.0, target.finetune.unsolved_teacher_coef)


def _run(arm: str, seed: int, reaches_at: int, final: float) -> pd.DataFrame:
    """A learning curve at -200 until ``reaches_at``, then at -100; judged at ``final``."""
    steps = np.arange(0, 10_001, 2500)
    history = pd.DataFrame({"env_step": steps, "metric": "eval_return",
                            "value": np.where(steps >= reaches_at, -100.0, -200.0)})
    return run_table(history, np.full(10, final), 10_000, arm, seed)


def test_summaries_and_verdicts_from_run_tables():
    runs = pd.concat([_run("scratch", s, 10_000, -150.0 - s) for s in range(5)]
                     + [_run("her", s, 2500, -100.0 - s) for s in range(5)]
                     + [_run("rtg", s, 7500 if s % 2 else 10_000, -150.0 - s)
                        for s in range(5)], ignore_index=True)
    assert (runs[runs["metric"] == JUDGE]["env_step"] == 10_000).all()
    summaries = summarise_runs(runs, threshold=-110.0, budget=10_000,
                               config=EvalConfig(bootstrap_samples=200),
                               rng=np.random.default_rng(0))
    assert list(summaries) == ["scratch", "her", "rtg"]
    assert summaries["her"]["steps_to_threshold"]["iqm"] == 2500.0
    assert summaries["scratch"]["steps_to_threshold"]["iqm"] == 10_000.0  # reached at the end
    assert summaries["her"]["solved_seeds"] == 5 and summaries["scratch"]["solved_seeds"] == 0
    arms = {"scratch": ArmConfig(transfer=False, frozen=()),
            "her": ArmConfig(her_k=4, compare_to="scratch"),
            "rtg": ArmConfig(rtg_coef=0.1, compare_to="scratch"),
            "missing": ArmConfig(compare_to="scratch")}
    lines = verdicts(summaries, arms)
    assert lines[0].startswith("her vs scratch: helps (better env steps to threshold, "
                               "final return, area under the curve")
    assert lines[1].startswith("rtg vs scratch:") and "worse" not in lines[1]
    assert len(lines) == 2  # an arm that did not run has no verdict
    report = markdown_report([{"name": "mc", "target": "MountainCar-v0", "budget": 10_000,
                               "seeds": 5, "reward_threshold": -110.0, "eval_episodes": 10,
                               "arms": summaries, "verdicts": lines,
                               "skipped": ["everything"]}])
    assert "## mc: MountainCar-v0" in report and "| her | 2500.0 [2500.0, 2500.0] |" in report
    assert "not run on this target: everything" in report
