"""Nodes of the transfer suite."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt

from hindsight_rl.core.suite import heatmap, markdown, pair_row


def suite_report(*metrics: dict[str, Any], pairs: tuple[str, ...]
                 ) -> tuple[dict[str, Any], plt.Figure, str]:
    """Every pair's transfer metrics (its target's ``transfer_metrics``, in ``pairs``' order)
    as one summary, one heat map and one markdown page."""
    rows = [pair_row(name, pair) for name, pair in zip(pairs, metrics, strict=True)]
    summary = {"pairs": rows, "hurt": [row["pair"] for row in rows if row["clearly_worse"]]}
    return summary, heatmap(rows), markdown(rows)
