"""Nodes of the export stage: thin wrappers around ``hindsight_rl.core.minari_io``."""

from __future__ import annotations

import logging

import pandas as pd

from hindsight_rl.core.minari_io import env_steps

logger = logging.getLogger(__name__)


def export_minari(hindsight_dataset: pd.DataFrame) -> pd.DataFrame:
    """The hindsight dataset's environment steps with their labels, for the catalog's
    ``MinariDataset`` to write: relabelled copies are not environment steps, and Minari's
    consumers relabel for themselves."""
    steps = env_steps(hindsight_dataset)
    logger.info("exporting %d episodes, %d env steps (%d relabelled copies left out) of %s",
                steps["episode_id"].nunique(), len(steps), len(hindsight_dataset) - len(steps),
                steps.attrs.get("env_id", "an unnamed env"))
    return steps
