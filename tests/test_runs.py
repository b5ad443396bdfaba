import json

from hindsight_rl.runs import MANIFESTS, describe_run, main, run_lines, run_versions


def _manifest(data, version: str, text: str) -> None:
    folder = data / MANIFESTS / version
    folder.mkdir(parents=True)
    (folder / MANIFESTS.name).write_text(text)


def test_a_run_without_metrics_or_with_a_damaged_manifest_is_listed_not_a_traceback(tmp_path,
                                                                                   capsys):
    _manifest(tmp_path, "2026-01-01T00.00.00.000Z", json.dumps({
        "status": "failed: ValueError: x", "run_params": {"pipeline_names": ["target"]},
        "nodes": ["mountaincar.evaluate", "mountaincar.plan_transfer"]}))
    _manifest(tmp_path, "2026-01-02T00.00.00.000Z", '{"status": NaN}')
    assert run_versions(tmp_path) == ["2026-01-02T00.00.00.000Z", "2026-01-01T00.00.00.000Z"]
    failed = describe_run(tmp_path, "2026-01-01T00.00.00.000Z")
    assert run_lines(failed) == [
        "2026-01-01T00.00.00.000Z  failed: ValueError: x  pipelines target  env local",
        "  mountaincar: no metrics saved"]
    assert describe_run(tmp_path, "2026-01-02T00.00.00.000Z")["status"].startswith(
        "unreadable (")
    assert main([str(tmp_path)]) == 0
    newest = capsys.readouterr().out.splitlines()[0]
    assert newest.startswith("2026-01-02T00.00.00.000Z  unreadable")


def test_an_empty_data_folder_says_so(tmp_path, capsys):
    assert main([str(tmp_path)]) == 0
    assert "No runs in" in capsys.readouterr().out
