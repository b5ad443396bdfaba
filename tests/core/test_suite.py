import matplotlib.pyplot as plt
import pytest

from hindsight_rl.core.suite import heatmap, markdown, pair_row


def _stat(value: float) -> dict:
    return {"iqm": value, "ci": [value - 1.0, value + 1.0]}


def _arm(jumpstart: float, final: float, auc: float, steps: float) -> dict:
    return {"jumpstart": _stat(jumpstart), "final_return": _stat(final), "auc": _stat(auc),
            "steps_to_threshold": _stat(steps), "normalised_auc": _stat(auc / 500)}


METRICS = {"target": "CartPole-v1 (length 1.0)", "reward_threshold": 475.0,
           "arms": {"finetuned": _arm(500, 500, 490, 1000), "scratch": _arm(20, 500, 160, 20000)},
           "transfer_plan": {"source": "cartpole", "random_return": 25.0,
                             "reason": "Transfer from cartpole: it teaches."},
           "input_versions": {"hindsight_dataset": "2026-12-05T10.00.00.000Z"}}


def test_a_pair_row_holds_taylor_and_stones_metrics_and_the_plan():
    row = pair_row("long_pole", METRICS)
    assert row["jumpstart.gain"] == pytest.approx((500 - 20) / (475 - 25))
    assert row["final_return.gain"] == 0.0
    assert row["time_ratio"] == pytest.approx(1000 / 20000)
    assert row["verdict"] == "helped" and "jumpstart" not in row["clearly_worse"]
    assert row["source"] == "cartpole" and row["plan"] == "Transfer from cartpole: it teaches."


def test_the_report_and_heat_map_show_every_pair():
    rows = [pair_row("long_pole", METRICS), pair_row("again", METRICS)]
    page = markdown(rows)
    assert page.count("| cartpole → CartPole-v1") == 2 and "0.05 | helped |" in page
    assert "- long_pole: Transfer from cartpole: it teaches." in page
    assert ("- again: Input versions: 2026-12-05T10.00.00.000Z (hindsight_dataset)."
            in page)
    figure = heatmap(rows)
    image = figure.axes[0].images[0].get_array()
    plt.close(figure)
    assert image.shape == (2, 4) and image[0, 0] == pytest.approx(1.0)  # capped gain
