"""kedro-viz draws the project as users should see it: layers on, no tags, every stage, and
previews of policies (JSON), HTML reports (the page) and recorded episodes (GIFs). The
page itself in Chromium is checked by scripts/check_kedro_viz.py in CI (``.ci/run``)."""

import sys

from tests.conftest import PROJECT_ROOT
from tests.pipelines.conftest import run_session

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
import check_kedro_viz  # noqa: E402


def test_the_built_page_has_layers_every_stage_and_the_previews(project):
    run_session(project, pipeline_names=["__default__"])
    build = check_kedro_viz.build_static_page(project, env="smoke")
    assert check_kedro_viz.problems(build) == []
