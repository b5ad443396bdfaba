"""Training checkpoints: the whole state of a DQN run in one safetensors file, no pickle.

A checkpoint is keyed by what the run *is* (configs, seed, initial weights, warm-start
data), so re-running the same command resumes the interrupted run and nothing else: a
changed config or a new pretrained policy gives a new key and a fresh start. The file is
removed when its run completes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from hindsight_rl.core.artefacts import write_atomically
from hindsight_rl.core.config import RuntimeConfig
from hindsight_rl.core.errors import HindsightRLError
from hindsight_rl.core.policy_file import metadata_document

logger = logging.getLogger(__name__)

FORMAT = "hindsight-rl/training-checkpoint"
FORMAT_VERSION = 2  # 2: Adam moments member by member (stacked seeds)
_METADATA_KEY = "hindsight_rl"


class CheckpointError(HindsightRLError, ValueError):
    """A training checkpoint cannot be read; delete it to start the run afresh."""


@dataclass(frozen=True)
class Checkpoint:
    """Tensors and a JSON-able document: the in-memory form of a checkpoint file."""

    tensors: dict[str, torch.Tensor]
    document: dict[str, Any]


def run_key(settings: Mapping[str, Any], arrays: Iterable[np.ndarray | torch.Tensor]) -> str:
    """SHA-256 over JSON ``settings`` and the bytes of ``arrays`` (initial weights, data)."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for array in arrays:
        digest.update(np.ascontiguousarray(
            array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else array))
    return digest.hexdigest()


@dataclass(frozen=True)
class Checkpoints:
    """A folder of training checkpoints, one file per run, written every ``interval`` steps."""

    directory: Path
    interval: int

    def path(self, key: str, label: str) -> Path:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-")
        return self.directory / f"{name}-{key[:16]}.safetensors"

    def load(self, key: str, label: str) -> Checkpoint | None:
        """The run's checkpoint, or ``None`` when it has none."""
        path = self.path(key, label)
        if not path.is_file():
            return None
        data = path.read_bytes()
        try:
            document = metadata_document(data, _METADATA_KEY)
            tensors = load_tensors(data)
        except (ValueError, KeyError, TypeError, SafetensorError) as error:
            raise CheckpointError(f"{path}: unreadable training checkpoint ({error}); "
                                  "delete it to start this run afresh") from None
        if (document.get("format"), document.get("format_version")) != (FORMAT,
                                                                         FORMAT_VERSION):
            raise CheckpointError(f"{path}: not a {FORMAT} v{FORMAT_VERSION} file (written by "
                                  "another version of hindsight-rl?); delete it to start this "
                                  "run afresh")
        if document.get("key") != key:
            raise CheckpointError(f"{path}: belongs to another run; delete it")
        logger.info("%s: resuming from %s (env step %d)", label, path, document["step"])
        return Checkpoint(tensors, document)

    def save(self, key: str, label: str, checkpoint: Checkpoint) -> None:
        """Write atomically: a crash mid-save keeps the previous checkpoint."""
        path = self.path(key, label)
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {**checkpoint.document, "format": FORMAT, "format_version": FORMAT_VERSION,
                    "key": key}
        data = save_tensors({k: v.contiguous() for k, v in checkpoint.tensors.items()},
                            metadata={_METADATA_KEY: json.dumps(document, allow_nan=False)})
        write_atomically(path, data)

    def remove(self, key: str, label: str) -> None:
        self.path(key, label).unlink(missing_ok=True)


def checkpoints_for(runtime: RuntimeConfig) -> Checkpoints | None:
    """The configured checkpoint folder, or ``None`` when ``runtime.checkpoint_dir`` is null."""
    if runtime.checkpoint_dir is None:
        return None
    return Checkpoints(Path(runtime.checkpoint_dir), runtime.checkpoint_interval)


def prefixed(prefix: str, tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``{prefix.name: tensor}``, cloned so later training does not change them."""
    return {f"{prefix}.{name}": tensor.detach().clone() for name, tensor in tensors.items()}


def unprefixed(prefix: str, tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`prefixed`: the tensors under ``prefix.``."""
    start = len(prefix) + 1
    return {name[start:]: tensor for name, tensor in tensors.items()
            if name.startswith(f"{prefix}.")}
