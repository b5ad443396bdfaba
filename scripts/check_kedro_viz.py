"""Build kedro-viz's static page for a project that has run, check what it will draw, then
open it in headless Chromium and check the six stages and a dataset's preview are drawn.

    pip install -e ".[viz]" && apt-get install chromium     # Debian's Chromium
    kedro run --env smoke                                     # previews need saved data
    python scripts/check_kedro_viz.py --screenshot kedro-viz.png

From the built page's data (:func:`problems`, no browser): layers on (they form no cycle),
no tags, every stage's node, and previews of the pretrained policy (JSON), a target's HTML
report (the page) and a recorded episode (a GIF). In Chromium: every stage's node label
with all modular pipelines expanded, and the selected policy's preview in the side panel.
Exit status 0 when all hold; what was found is printed either way. CI runs it after the
tests (``.ci/run``), on a smoke run.
"""

from __future__ import annotations

import argparse
import base64
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
# The six stages' nodes, by the names Kedro-Viz labels them with.
STAGES = ("collect_source_rollouts", "pretrain", "export_weights", "plan_transfer", "finetune",
          "train_scratch", "evaluate")
LAYERS = ["raw", "intermediate", "model_input", "models", "model_output", "reporting"]
POLICY = "sources.cartpole.pretrained_policy"
PREVIEWS = {POLICY: "JSONPreview", "mountaincar.transfer_report_html": "HTMLPreview",
            "mountaincar.seed_0.finetuned_episode": "ImagePreview"}


def build_static_page(project: Path, env: str | None) -> Path:
    """``kedro viz build --include-previews`` in ``project`` (with the config environment
    ``env``: the build has no ``--env``, KEDRO_ENV reaches it): its ``build`` folder."""
    variables = {**os.environ, "DO_NOT_TRACK": "1", **({"KEDRO_ENV": env} if env else {})}
    subprocess.run(["kedro", "viz", "build", "--include-previews"], cwd=project, check=True,
                   capture_output=True, env=variables)
    return project / "build"


def problems(build: Path) -> list[str]:
    """What the built page's data gets wrong (nothing: an empty list)."""
    graph = json.loads((build / "api" / "main").read_text())
    found = []
    if sorted(graph["layers"]) != sorted(LAYERS):
        found.append(f"layers {graph['layers']}, expected {LAYERS} (empty: a cycle)")
    if graph["tags"]:
        found.append(f"tags shown in the filter panel: {graph['tags']}")
    tasks = {node["name"] for node in graph["nodes"] if node["type"] == "task"}
    found += [f"no {stage} node" for stage in STAGES if stage not in tasks]
    ids = {node["name"]: node["id"] for node in graph["nodes"]}
    for name, kind in PREVIEWS.items():
        node = json.loads((build / "api" / "nodes" / ids[name]).read_text())
        if node.get("preview_type") != kind or not _previews(kind, node.get("preview")):
            found.append(f"{name}: preview {node.get('preview_type')}, expected a {kind}")
    return found


def _previews(kind: str, preview: Any) -> bool:
    """Whether ``preview`` is what kedro-viz can render as ``kind``."""
    if not isinstance(preview, str):
        return False
    if kind == "JSONPreview":
        return "env" in json.loads(preview)
    if kind == "HTMLPreview":
        return preview.startswith("<!doctype html>")
    return base64.b64decode(preview).startswith(b"GIF89a")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """No access log on the terminal."""


def serve(folder: Path) -> http.server.ThreadingHTTPServer:
    """The static page over HTTP: Chromium will not fetch its JSON from file:// URLs."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def chromium(url: str, *args: str) -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("chromium not found: apt-get install chromium")
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", "--window-size=1600,1000",
                           "--virtual-time-budget=15000", *args, url],
                          check=True, capture_output=True, text=True, timeout=180).stdout


def drawn(build: Path, screenshot: Path | None) -> list[str]:
    """What Chromium does not draw: a stage's node label with every modular pipeline
    expanded, or the selected policy's preview (its env id) in the metadata panel."""
    graph = json.loads((build / "api" / "main").read_text())
    policy_id = next(node["id"] for node in graph["nodes"] if node["name"] == POLICY)
    server = serve(build)
    url = (f"http://127.0.0.1:{server.server_address[1]}/"
           f"?expandAllPipelines=true&sid={policy_id}")
    try:
        dom = chromium(url, "--dump-dom")
        if screenshot:
            chromium(url, f"--screenshot={screenshot.resolve()}")
    finally:
        server.shutdown()
    labels = set(re.findall(r'class="pipeline-node__text"[^>]*>([^<]+)<', dom))
    print(f"{len(labels)} node labels drawn: {', '.join(sorted(labels))}")
    missing = [f"no {stage} label drawn" for stage in STAGES if stage not in labels]
    if "CartPole-v1" not in dom:
        missing.append(f"{POLICY} selected, but its preview is not in the side panel")
    return missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=PROJECT,
                        help="a project folder that has run (default: this one)")
    parser.add_argument("--env", help="the config environment it ran with, e.g. smoke")
    parser.add_argument("--screenshot", type=Path, help="also save a PNG of the page")
    args = parser.parse_args()
    build = build_static_page(args.project, args.env)
    found = problems(build) + drawn(build, args.screenshot)
    if found:
        sys.exit("kedro-viz: " + "; ".join(found))
    print("kedro-viz drew every stage, its layers and the previews")


if __name__ == "__main__":
    main()
