"""A policy file as an MLflow pyfunc model, "from code": MLflow stores this file's source with
the model and runs it on ``mlflow.pyfunc.load_model``, so nothing of ours is pickled. The
model's one artifact is the ``.safetensors`` policy file itself, played by the project's
numpy player (:class:`~hindsight_rl.core.policy_file.NumpyPolicy`): loading needs
hindsight-rl installed, as playing the file does. A ``gru`` file is refused on load: its
actions depend on the episode so far, which a batch of unrelated observations does not carry
(``python -m hindsight_rl.play`` plays it).

Never imported by the project (it imports mlflow): ``hindsight_rl.mlflow_tracking`` logs
it by path.
"""

# No `from __future__ import annotations`: MLflow reads predict's type hints as objects.
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel, PythonModelContext

from hindsight_rl.core.policy_file import Q_NETWORK, NumpyPolicy, PolicyFileError
from hindsight_rl.mlflow_tracking import POLICY_ARTIFACT


class GreedyPolicy(PythonModel):
    """Observations in (a batch, as the environment gives them), each one's greedy action and
    Q-values out."""

    def load_context(self, context: PythonModelContext) -> None:
        path = Path(context.artifacts[POLICY_ARTIFACT])
        self.policy = NumpyPolicy(path.read_bytes(), source=str(path))
        if self.policy.recurrent:
            raise PolicyFileError(f"{path}: a gru policy remembers its episode, so a batch of "
                                  "observations does not decide its actions; a pyfunc model "
                                  "serves policies without memory (play it with python -m "
                                  "hindsight_rl.play)")

    def predict(self, context: PythonModelContext, model_input: np.ndarray,
                params: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
        """``model_input``: observations (B, width); the logged signature gives the width.
        An actor's file gives its mean actions only: it has no Q-values."""
        if self.policy.kind != Q_NETWORK:
            return {"action": self.policy.actions(np.asarray(model_input))}
        q_values = self.policy.q_values(np.asarray(model_input))
        return {"action": q_values.argmax(axis=1), "q_values": q_values.astype(np.float32)}


mlflow.models.set_model(GreedyPolicy())
