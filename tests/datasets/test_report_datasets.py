import inspect

from kedro.io.core import Version
from kedro_datasets._typing import HTMLPreview

from hindsight_rl.datasets import HTMLReportDataset


def test_an_html_report_previews_as_the_page_itself(tmp_path):
    page = "<!doctype html><html><body><h1>Transfer report</h1></body></html>\n"
    dataset = HTMLReportDataset(filepath=str(tmp_path / "report.html"),
                                version=Version(None, None))
    dataset.save(page)
    assert dataset.preview() == page
    # kedro-viz renders the page (not its source) for this return type
    assert inspect.signature(dataset.preview).return_annotation in (HTMLPreview, "HTMLPreview")
