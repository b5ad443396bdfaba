"""Nodes of the retrain stage."""

from __future__ import annotations

import logging
from typing import Any

from hindsight_rl.core.comparison import score_policies
from hindsight_rl.core.config import EvalConfig, TargetConfig, from_mapping
from hindsight_rl.core.policy_file import Policy
from hindsight_rl.core.promotion import best_challenger, decide

logger = logging.getLogger(__name__)


def promote(current_champion: Policy | None, target: dict[str, Any],
            evaluation: dict[str, Any], **finetuned: Policy
            ) -> tuple[Policy, dict[str, Any]]:
    """Champion/challenger: the best fine-tuned seed of this run challenges the current
    champion on the same held-out episodes (both re-played from their file bytes); the
    winner is saved as the new champion version, and the decision is recorded.

    ``finetuned`` holds this run's policies as ``seed_<n>``.
    """
    config = from_mapping(TargetConfig, target, "target")
    eval_config = from_mapping(EvalConfig, evaluation, "evaluation")
    policies = dict(finetuned)
    if current_champion is not None:
        policies["champion"] = current_champion
    returns = score_policies(policies, config.env, eval_config)
    challenger = best_challenger({k: v for k, v in returns.items() if k != "champion"})
    decision = decide(challenger, returns[challenger], returns.get("champion"),
                      eval_config.promotion_margin)
    logger.info("%s: %s", config.env.id, decision.reason)
    winner = policies[challenger] if decision.promoted else current_champion
    return winner, {**decision.record(), "env_id": config.env.id,
                    "episodes": eval_config.episodes, "first_seed": eval_config.seed}
