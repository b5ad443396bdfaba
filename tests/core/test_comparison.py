import numpy as np
import pandas as pd
import pytest

from hindsight_rl.core.comparison import summarise_arm, verdict
from hindsight_rl.core.config import EvalConfig


def _arm(steps: float, final: float, auc: float) -> dict:
    def stat(value: float) -> dict:
        return {"iqm": value, "ci": [value - 1, value + 1]}

    return {"steps_to_threshold": stat(steps), "final_return": stat(final), "auc": stat(auc),
            "solved_seeds": 3, "seeds": 3}


@pytest.mark.parametrize(("finetuned", "expected"), [
    (_arm(10_000, 500, 300), "Transfer helped (better env steps to threshold, final return, "
                             "area under the learning curve)"),
    (_arm(10_000, 300, 150), "Transfer gave mixed results (better env steps to threshold; "
                             "worse final return, area under the learning curve)"),
    (_arm(30_000, 400, 200), "Transfer hurt: negative transfer"),
    (_arm(20_000, 400.5, 200), "Transfer made no clear difference"),
])
def test_verdict_reads_every_metric(finetuned, expected):
    assert verdict(finetuned, _arm(20_000, 400, 200)).startswith(expected)


def test_unreached_threshold_counts_as_the_whole_budget():
    history = pd.DataFrame({"env_step": [0, 100, 200] * 2, "metric": "eval_return",
                            "value": [0.0, 5.0, 9.0, 0.0, 1.0, 2.0], "seed": [0] * 3 + [1] * 3})
    returns = {"seed_0": np.full(4, 9.0), "seed_1": np.full(4, 2.0)}
    summary = summarise_arm(returns, history, threshold=5.0, budget=1000,
                            config=EvalConfig(bootstrap_samples=20),
                            rng=np.random.default_rng(0))
    assert summary["per_seed"]["seed_0"]["steps_to_threshold"] == 100
    assert summary["per_seed"]["seed_1"]["steps_to_threshold"] is None
    assert summary["steps_to_threshold"]["mean"] == pytest.approx((100 + 1000) / 2)
    assert summary["solved_seeds"] == 1
