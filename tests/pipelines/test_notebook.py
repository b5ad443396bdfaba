"""The notebook in notebooks/ runs top to bottom against a smoke run's catalog."""

import shutil

import nbformat
from nbclient import NotebookClient

from tests.conftest import PROJECT_ROOT
from tests.pipelines.conftest import run_session

NOTEBOOK = "explore_hindsight_dataset.ipynb"


def test_notebook_runs_on_the_catalog_and_shows_its_plot_and_an_episode(project, monkeypatch):
    run_session(project, pipeline_names=["__default__"])
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's own (inline) backend
    (project / "notebooks").mkdir(exist_ok=True)
    shutil.copy(PROJECT_ROOT / "notebooks" / NOTEBOOK, project / "notebooks" / NOTEBOOK)
    notebook = nbformat.read(project / "notebooks" / NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(project / "notebooks")}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "Transfer " in printed and "MountainCar-v0" in printed
    # The learning curves are drawn in the notebook: importing the project must not switch
    # matplotlib to a file-only backend.
    assert [o for o in outputs if "image/png" in o.get("data", {})]
    assert [o for o in outputs if "image/gif" in o.get("data", {})]  # a recorded episode
