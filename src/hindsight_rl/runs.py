"""The runs in a data folder and what each decided: ``kedro runs`` (or
``python -m hindsight_rl.runs [DATA]``) lists them, newest first, and every ``kedro run``
ends with the same lines for itself.

A run is its ``run_manifest`` (``08_reporting/run_manifest.json/<version>/``: status, how it
was started, the versions it loaded); every artefact it saved carries the same version, so
its verdicts are the ``transfer_metrics`` of that version. Read from local files only.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hindsight_rl.core.artefacts import bounded_json

MANIFESTS = Path("08_reporting/run_manifest.json")


def run_versions(data_root: Path) -> list[str]:
    """Every run's version in ``data_root``, newest first."""
    folder = data_root / MANIFESTS
    return sorted((p.name for p in folder.glob("*") if (p / MANIFESTS.name).is_file()),
                  reverse=True)


def describe_run(data_root: Path, version: str) -> dict[str, Any]:
    """One run: its status, pipelines, config environment, and per target of its evaluate
    nodes the verdict and the report's path."""
    manifest = _json(data_root / MANIFESTS / version / MANIFESTS.name)
    params = manifest.get("run_params", {})
    targets = sorted(name.removesuffix(".evaluate") for name in manifest.get("nodes", [])
                     if name.endswith(".evaluate"))
    verdicts = {}
    for target in targets:
        metrics = data_root / f"08_reporting/{target}/transfer_metrics.json/{version}" \
            / "transfer_metrics.json"
        report = data_root / f"08_reporting/{target}/transfer_report.md/{version}" \
            / "transfer_report.md"
        verdict = _json(metrics).get("verdict") if metrics.is_file() else None
        verdicts[target] = {"verdict": verdict or "no metrics saved",
                            "report": str(report) if report.is_file() else None}
    return {"version": version, "status": manifest.get("status", "unknown"),
            "pipelines": params.get("pipeline_names") or ["__default__"],
            "env": params.get("env") or "local", "targets": verdicts}


def run_lines(run: dict[str, Any]) -> list[str]:
    """A run in a few lines: the run, then a line per target (the verdict's first clause)."""
    lines = [f"{run['version']}  {run['status']}  pipelines {', '.join(run['pipelines'])}  "
             f"env {run['env']}"]
    for target, outcome in run["targets"].items():
        verdict = outcome["verdict"].split(":")[0]
        where = f"  ({outcome['report']})" if outcome["report"] else ""
        lines.append(f"  {target}: {verdict}{where}")
    return lines


def _json(path: Path) -> dict[str, Any]:
    """The document at ``path``; a damaged one is shown as such, not a traceback."""
    try:
        document = bounded_json(path.read_bytes(), str(path))
    except ValueError as error:
        return {"status": f"unreadable ({error})", "verdict": f"unreadable ({error})"}
    return document if isinstance(document, dict) else {}


def main(argv: list[str] | None = None) -> int:
    data_root = Path((argv if argv is not None else sys.argv[1:] or ["data"])[0])
    versions = run_versions(data_root)
    if not versions:
        print(f"No runs in {data_root} (no {MANIFESTS} versions)")
    for version in versions:
        print("\n".join(run_lines(describe_run(data_root, version))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
