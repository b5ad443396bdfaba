import inspect
import json

import numpy as np
import pytest
import torch
from kedro.io.core import DatasetError, Version
from kedro_datasets._typing import JSONPreview

from hindsight_rl.core.config import EnvConfig, NetworkConfig
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.policy_file import Policy
from hindsight_rl.datasets import PolicyFileDataset


def _policy(seed: int) -> Policy:
    torch.manual_seed(seed)
    return Policy(network=QNetwork(2, 3, NetworkConfig(hidden_sizes=(4, 4))),
                  env=EnvConfig(id="MountainCar-v0"), gamma=0.98, provenance={"seed": seed})


def _same_weights(a: Policy, b: Policy) -> bool:
    first, second = a.network.state_dict(), b.network.state_dict()
    return all(torch.equal(first[k], second[k]) for k in first)


def test_versions_accumulate_and_latest_loads(tmp_path):
    filepath = str(tmp_path / "policy.safetensors")
    PolicyFileDataset(filepath=filepath, version=Version(None, "2026-01-01T00.00.00.000Z")
                      ).save(_policy(0))
    PolicyFileDataset(filepath=filepath, version=Version(None, "2026-01-02T00.00.00.000Z")
                      ).save(_policy(1))
    latest = PolicyFileDataset(filepath=filepath, version=Version(None, None)).load()
    pinned = PolicyFileDataset(filepath=filepath,
                               version=Version("2026-01-01T00.00.00.000Z", None)).load()
    assert _same_weights(latest, _policy(1)) and _same_weights(pinned, _policy(0))
    assert latest.loaded_version == "2026-01-02T00.00.00.000Z"  # what reports cite
    assert pinned.loaded_version == "2026-01-01T00.00.00.000Z"
    assert not list(tmp_path.rglob("*.tmp"))


def test_failed_save_leaves_no_version_behind(tmp_path):
    broken = _policy(0)
    broken.network.head.bias.data[0] = float("nan")
    with pytest.raises(DatasetError, match="not finite"):
        PolicyFileDataset(filepath=str(tmp_path / "p.safetensors"),
                          version=Version(None, None)).save(broken)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_numpy_dtype_of_saved_tensors_is_float32(tmp_path):
    from safetensors.numpy import load_file
    path = tmp_path / "p.safetensors"
    PolicyFileDataset(filepath=str(path)).save(_policy(0))
    assert {t.dtype for t in load_file(str(path)).values()} == {np.dtype("float32")}


def test_kedro_viz_preview_is_the_metadata_document(tmp_path):
    dataset = PolicyFileDataset(filepath=str(tmp_path / "p.safetensors"))
    dataset.save(_policy(3))
    preview = dataset.preview()
    assert isinstance(preview, str)  # kedro-viz renders a JSONPreview's text, not a dict
    assert inspect.signature(dataset.preview).return_annotation in (JSONPreview, "JSONPreview")
    document = json.loads(preview)
    assert document["env"]["id"] == "MountainCar-v0" and document["provenance"] == {"seed": 3}
