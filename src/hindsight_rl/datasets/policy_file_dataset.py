"""Versioned Kedro datasets for policy files (safetensors + JSON metadata, never pickle).

Kedro-datasets' experimental ``SafetensorsDataset`` saves a bare tensor dict; ours keeps the
DESIGN.md document that makes a file playable on its own, so it has a class of its own.
Writes go to a temporary name first and are renamed into place, so a crash mid-save never
leaves a half-written file where "latest version" would find it.
"""

from __future__ import annotations

import json
from typing import Any

from kedro_datasets._typing import JSONPreview  # kedro-viz's preview types live here

from hindsight_rl.core.policy_file import (
    Policy,
    policy_from_bytes,
    policy_to_bytes,
    read_document,
)
from hindsight_rl.datasets.binary_file import BinaryFileDataset
from hindsight_rl.datasets.contracts import as_artefact_errors


class PolicyFileDataset(BinaryFileDataset):
    """One :class:`~hindsight_rl.core.policy_file.Policy` as one ``.safetensors`` file, with
    fsspec paths and versioning as in Kedro's own file datasets.

    Example catalog entry::

        "sources.{source}.pretrained_policy":
          type: hindsight_rl.datasets.PolicyFileDataset
          filepath: data/06_models/sources/cartpole/pretrained_policy.safetensors
          versioned: true
    """

    def __init__(self, *, missing_ok: bool = False, **kwargs: Any) -> None:
        """``missing_ok``: load ``None`` when nothing was saved yet (e.g. the first champion);
        the other arguments are :class:`BinaryFileDataset`'s."""
        self._missing_ok = missing_ok
        super().__init__(**kwargs)

    def load(self) -> Policy | None:
        if self._missing_ok and not self._exists():
            return None
        data, path = self._read()
        with as_artefact_errors():
            policy = policy_from_bytes(data, source=path)
        policy.loaded_version = self.loaded_version()
        return policy

    def preview(self) -> JSONPreview:
        """kedro-viz's JSON preview: the file's metadata document (shapes, env, provenance),
        as the JSON text kedro-viz renders (it picks the renderer by this return type)."""
        data, path = self._read()
        with as_artefact_errors():
            return JSONPreview(json.dumps(read_document(data, source=path)))

    def save(self, data: Policy) -> None:
        with as_artefact_errors():
            payload = policy_to_bytes(data)  # fails before anything is written
        self._write(payload)
