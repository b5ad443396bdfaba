"""Build kedro-viz's static page for this project, open it in headless Chromium and check
that the pipeline's stages were drawn.

    pip install -e ".[viz]"          # and Debian's chromium: apt-get install chromium
    python scripts/check_kedro_viz.py --screenshot kedro-viz.png

Exit status 0 when every expected node label is on the rendered page; the labels found are
printed either way. Not part of CI: it needs a browser.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
EXPECTED = {"collect_source_rollouts", "pretrain", "export_weights", "pretrained_policy",
            "mountaincar", "cartpole_long_pole"}


def build_static_page() -> Path:
    subprocess.run(["kedro", "viz", "build"], cwd=PROJECT, check=True, capture_output=True,
                   env={**os.environ, "DO_NOT_TRACK": "1"})
    return PROJECT / "build"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", type=Path, help="also save a PNG of the page")
    args = parser.parse_args()
    server = serve(build_static_page())
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        dom = chromium(url, "--dump-dom")
        if args.screenshot:
            chromium(url, f"--screenshot={args.screenshot.resolve()}")
    finally:
        server.shutdown()
    labels = set(re.findall(r'class="pipeline-node__text"[^>]*>([^<]+)<', dom))
    print(f"{len(labels)} node labels drawn: {', '.join(sorted(labels))}")
    missing = EXPECTED - labels
    if missing:
        sys.exit(f"missing from the page: {sorted(missing)}")
    print("kedro-viz drew every stage")


if __name__ == "__main__":
    main()
