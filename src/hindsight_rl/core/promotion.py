"""Champion/challenger: a retrained policy replaces the current one only if it plays better
on the same held-out episodes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Decision:
    """What ``retrain`` decided, kept as a record beside the champion."""

    promoted: bool
    challenger: str
    """Which fine-tuned seed challenged (the best of this run)."""
    challenger_mean: float
    champion_mean: float | None
    """``None`` when there was no champion yet."""
    reason: str

    def record(self) -> dict[str, Any]:
        return asdict(self)


def best_challenger(returns: dict[str, np.ndarray]) -> str:
    """The run's policy with the highest mean return (ties: the first seed)."""
    return max(returns, key=lambda name: float(returns[name].mean()))


def decide(challenger: str, challenger_returns: np.ndarray,
           champion_returns: np.ndarray | None, margin: float) -> Decision:
    """Promote the challenger if there is no champion or it beats the champion's mean return
    on the same episodes by more than ``margin``."""
    mean = float(challenger_returns.mean())
    if champion_returns is None:
        return Decision(True, challenger, mean, None, "no champion yet")
    champion = float(champion_returns.mean())
    if mean > champion + margin:
        return Decision(True, challenger, mean, champion,
                        f"challenger {mean:.1f} beats champion {champion:.1f} by more than "
                        f"{margin}")
    return Decision(False, challenger, mean, champion,
                    f"challenger {mean:.1f} does not beat champion {champion:.1f} by more than "
                    f"{margin}; the champion stays")
