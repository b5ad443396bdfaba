"""A writer killed mid-save (SIGKILL: no cleanup runs) or stopped by a full disk must not
become the latest version, whatever the artefact: table, policy file, JSON, PNG or text."""

import errno
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest
import torch
from fsspec.implementations.local import LocalFileOpener
from kedro.io.core import Version
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import ParquetDataset

from hindsight_rl.core.config import EnvConfig, NetworkConfig
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.policy_file import Policy
from hindsight_rl.datasets import (
    AtomicJSONDataset,
    AtomicMatplotlibDataset,
    AtomicParquetDataset,
    AtomicTextDataset,
    PolicyFileDataset,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FIRST, SECOND = "2026-01-01T00.00.00.000Z", "2026-01-02T00.00.00.000Z"

# Saves one version, but the process kills itself after writing half of the first chunk.
DYING_WRITER = textwrap.dedent("""
    import os, signal, sys
    from fsspec.implementations.local import LocalFileOpener
    from kedro.io.core import Version
    from tests.datasets.test_crash_safety import make_dataset, make_data

    def half_then_die(self, data):
        self.f.write(bytes(data)[: max(1, len(data) // 2)])
        self.f.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    LocalFileOpener.write = half_then_die
    kind, filepath, version = sys.argv[1:]
    make_dataset(kind, filepath, Version(None, version)).save(make_data(kind, 1))
""")

CLASSES = {"atomic parquet": AtomicParquetDataset, "policy file": PolicyFileDataset,
           "json": AtomicJSONDataset, "png": AtomicMatplotlibDataset,
           "text": AtomicTextDataset, "plain kedro parquet": ParquetDataset,
           "plain kedro json": JSONDataset}
NAMES = {"atomic parquet": "table.parquet", "policy file": "policy.safetensors",
         "json": "metrics.json", "png": "curves.png", "text": "report.md"}


def make_dataset(kind: str, filepath: str, version: Version):
    return CLASSES[kind](filepath=filepath, version=version)


def make_data(kind: str, seed: int):
    if kind == "policy file":
        torch.manual_seed(seed)
        return Policy(network=QNetwork(2, 3, NetworkConfig(hidden_sizes=(64, 64))),
                      env=EnvConfig(id="MountainCar-v0"), gamma=0.98)
    if kind in ("json", "plain kedro json"):
        return {"verdict": f"run {seed}", "returns": list(range(seed, seed + 20_000))}
    if kind == "png":
        figure, axes = plt.subplots()
        axes.plot(range(1000), [seed * i for i in range(1000)])
        return figure
    if kind == "text":
        return f"# Report {seed}\n" + "row | value\n" * 20_000
    return pd.DataFrame({"value": range(seed * 10_000, (seed + 1) * 10_000)})


def _first_version_is_latest(kind: str, filepath: str) -> bool:
    """The latest version is the first save's, and holds what it saved (a PNG, which Kedro
    does not load, is compared byte for byte with a fresh rendering)."""
    dataset = make_dataset(kind, filepath, Version(None, None))
    if dataset.resolve_load_version() != FIRST:
        return False
    expected = make_data(kind, 0)
    if kind == "png":
        make_dataset(kind, str(Path(filepath).parent / "first.png"), None).save(expected)
        (rendered,) = Path(filepath).parent.glob("first.png")
        return (Path(filepath) / FIRST / Path(filepath).name).read_bytes() == rendered.read_bytes()
    loaded = dataset.load()
    if kind == "policy file":
        first, second = loaded.network.state_dict(), expected.network.state_dict()
        return all(torch.equal(first[k], second[k]) for k in first)
    if kind == "atomic parquet":
        return loaded.equals(expected)
    return loaded == expected


def _save_then_die_saving(kind: str, filepath: str) -> None:
    make_dataset(kind, filepath, Version(None, FIRST)).save(make_data(kind, 0))
    killed = subprocess.run([sys.executable, "-c", DYING_WRITER, kind, filepath, SECOND],
                            capture_output=True, cwd=PROJECT_ROOT)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()


@pytest.mark.parametrize("kind", NAMES)
def test_killed_save_leaves_the_previous_version_latest(tmp_path, kind):
    filepath = str(tmp_path / NAMES[kind])
    _save_then_die_saving(kind, filepath)
    written = [p for p in (tmp_path / NAMES[kind] / SECOND).rglob("*") if p.is_file()]
    assert written and all(p.stat().st_size > 0 for p in written), "the writer died mid-file"
    assert _first_version_is_latest(kind, filepath)


def _disk_full_after_half(monkeypatch) -> None:
    def half_then_enospc(self, data):
        self.f.write(bytes(data)[: max(1, len(data) // 2)])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(LocalFileOpener, "write", half_then_enospc)


@pytest.mark.parametrize("kind", NAMES)
def test_a_full_disk_mid_save_leaves_the_previous_version_latest_and_no_litter(
        tmp_path, monkeypatch, kind):
    filepath = str(tmp_path / NAMES[kind])
    make_dataset(kind, filepath, Version(None, FIRST)).save(make_data(kind, 0))
    with monkeypatch.context() as patch:
        _disk_full_after_half(patch)
        with pytest.raises(Exception, match="No space left on device"):
            make_dataset(kind, filepath, Version(None, SECOND)).save(make_data(kind, 1))
    assert _first_version_is_latest(kind, filepath)
    assert not [p for p in (tmp_path / NAMES[kind]).rglob("*")
                if p.is_file() and SECOND in str(p)], "the failed save left a file behind"


def test_the_same_kill_breaks_a_plain_parquet_dataset(tmp_path):
    """The control: without write-then-rename the half file becomes the latest version."""
    filepath = str(tmp_path / "table.parquet")
    _save_then_die_saving("plain kedro parquet", filepath)
    with pytest.raises(Exception, match="(?i)parquet|magic|footer|invalid"):
        make_dataset("plain kedro parquet", filepath, Version(None, None)).load()


def test_the_same_full_disk_leaves_a_truncated_latest_json_with_kedros_dataset(
        tmp_path, monkeypatch):
    """The control for the JSON, PNG and text datasets Kedro ships: the half-written file is
    the latest version."""
    filepath = str(tmp_path / "metrics.json")
    make_dataset("plain kedro json", filepath, Version(None, FIRST)).save(
        make_data("plain kedro json", 0))
    with monkeypatch.context() as patch:
        _disk_full_after_half(patch)
        with pytest.raises(Exception, match="No space left on device"):
            make_dataset("plain kedro json", filepath, Version(None, SECOND)).save(
                make_data("plain kedro json", 1))
    latest = make_dataset("plain kedro json", filepath, Version(None, None))
    assert latest.resolve_load_version() == SECOND
    with pytest.raises(Exception, match="(?i)expecting|unterminated|delimiter"):
        latest.load()
