"""Nodes of the retrain stage."""

from __future__ import annotations

import logging
from typing import Any

from hindsight_rl.core.comparison import score_policies
from hindsight_rl.core.config import EvalConfig, TargetConfig
from hindsight_rl.core.policy_file import Policy
from hindsight_rl.core.promotion import best_challenger, decide

logger = logging.getLogger(__name__)


def promote(current_champion: Policy | None, target: TargetConfig, evaluation: EvalConfig,
            **finetuned: Policy) -> tuple[Policy, dict[str, Any]]:
    """Champion/challenger: the best fine-tuned seed of this run challenges the current
    champion on the same held-out episodes (both re-played from their file bytes); the
    winner is saved as the new champion version, and the decision is recorded.

    ``finetuned`` holds this run's policies as ``seed_<n>``.
    """
    policies = dict(finetuned)
    if current_champion is not None:
        policies["champion"] = current_champion
    returns = score_policies(policies, target.env, evaluation)
    challenger = best_challenger({k: v for k, v in returns.items() if k != "champion"})
    decision = decide(challenger, returns[challenger], returns.get("champion"),
                      evaluation.promotion_margin)
    logger.info("%s: %s", target.env.id, decision.reason)
    winner = policies[challenger] if decision.promoted else current_champion
    return winner, {**decision.record(), "env_id": target.env.id,
                    "episodes": evaluation.episodes, "first_seed": evaluation.seed}
