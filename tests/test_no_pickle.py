"""Nothing on a load path unpickles: loading an artefact can never run code."""

import re

from tests.conftest import PROJECT_ROOT

UNSAFE = re.compile(r"\bimport pickle\b|\bfrom pickle\b|\bcloudpickle\b|\bdill\b|\bjoblib\b"
                    r"|torch\.load\(|pickle\.PickleDataset|PickleDataset")


def test_no_source_file_or_catalog_entry_unpickles():
    files = [*sorted((PROJECT_ROOT / "src").rglob("*.py")),
             *sorted((PROJECT_ROOT / "conf").rglob("*.yml"))]
    assert len(files) > 10
    offenders = [f"{path.relative_to(PROJECT_ROOT)}:{line}"
                 for path in files
                 for line, text in enumerate(path.read_text().splitlines(), start=1)
                 if UNSAFE.search(text)]
    assert not offenders
