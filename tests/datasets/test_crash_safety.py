"""A writer killed mid-save (SIGKILL: no cleanup runs) must not become the latest version."""

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch
from kedro.io.core import Version
from kedro_datasets.pandas import ParquetDataset

from hindsight_rl.core.config import EnvConfig, NetworkConfig
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.policy_file import Policy
from hindsight_rl.datasets import AtomicParquetDataset, PolicyFileDataset

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


def make_dataset(kind: str, filepath: str, version: Version):
    classes = {"atomic parquet": AtomicParquetDataset, "policy file": PolicyFileDataset,
               "plain kedro parquet": ParquetDataset}
    return classes[kind](filepath=filepath, version=version)


def make_data(kind: str, seed: int):
    if kind == "policy file":
        torch.manual_seed(seed)
        return Policy(network=QNetwork(2, 3, NetworkConfig(hidden_sizes=(64, 64))),
                      env=EnvConfig(id="MountainCar-v0"), gamma=0.98)
    return pd.DataFrame({"value": range(seed * 10_000, (seed + 1) * 10_000)})


def _same(kind: str, a, b) -> bool:
    if kind == "policy file":
        first, second = a.network.state_dict(), b.network.state_dict()
        return all(torch.equal(first[k], second[k]) for k in first)
    return a.equals(b)


def _save_then_die_saving(kind: str, filepath: str) -> None:
    make_dataset(kind, filepath, Version(None, FIRST)).save(make_data(kind, 0))
    killed = subprocess.run([sys.executable, "-c", DYING_WRITER, kind, filepath, SECOND],
                            capture_output=True, cwd=PROJECT_ROOT)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()


@pytest.mark.parametrize(("kind", "name"), [("atomic parquet", "table.parquet"),
                                            ("policy file", "policy.safetensors")])
def test_killed_save_leaves_the_previous_version_latest(tmp_path, kind, name):
    filepath = str(tmp_path / name)
    _save_then_die_saving(kind, filepath)
    written = [p for p in (tmp_path / name / SECOND).rglob("*") if p.is_file()]
    assert written and all(p.stat().st_size > 0 for p in written), "the writer died mid-file"
    latest = make_dataset(kind, filepath, Version(None, None)).load()
    assert _same(kind, latest, make_data(kind, 0))


def test_the_same_kill_breaks_a_plain_parquet_dataset(tmp_path):
    """The control: without write-then-rename the half file becomes the latest version."""
    filepath = str(tmp_path / "table.parquet")
    _save_then_die_saving("plain kedro parquet", filepath)
    with pytest.raises(Exception, match="(?i)parquet|magic|footer|invalid"):
        make_dataset("plain kedro parquet", filepath, Version(None, None)).load()
