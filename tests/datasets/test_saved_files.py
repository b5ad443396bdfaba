"""``saved_files``: what a dataset's last save wrote, read back for an experiment tracker."""

import matplotlib.pyplot as plt
from kedro.io import MemoryDataset
from kedro.io.core import Version

from hindsight_rl.datasets import AtomicMatplotlibDataset, AtomicTextDataset
from hindsight_rl.datasets.saved_files import file_path, saved_files


def test_the_save_version_is_read_even_with_an_older_load_version_pinned(tmp_path):
    path = str(tmp_path / "report.md")
    AtomicTextDataset(filepath=path, version=Version(None, "2026-01-01T00.00.00.000Z")).save("old")
    dataset = AtomicTextDataset(filepath=path, version=Version("2026-01-01T00.00.00.000Z",
                                                               "2026-01-02T00.00.00.000Z"))
    dataset.save("new")
    assert list(saved_files(dataset)) == [("report.md", b"new")]


def test_a_folder_of_figures_gives_each_file_under_the_folder_name(tmp_path):
    dataset = AtomicMatplotlibDataset(filepath=str(tmp_path / "curves"),
                                      version=Version(None, "2026-01-01T00.00.00.000Z"))
    dataset.save({"a.png": plt.figure(), "b.png": plt.figure()})
    files = dict(saved_files(dataset))
    assert sorted(files) == ["curves/a.png", "curves/b.png"]
    assert all(data.startswith(b"\x89PNG") for data in files.values())


def test_a_dataset_without_a_file_gives_nothing():
    assert file_path(MemoryDataset()) is None
    assert list(saved_files(MemoryDataset())) == []
