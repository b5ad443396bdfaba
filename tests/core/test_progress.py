import io

from rich.console import Console

from hindsight_rl.core.progress import StepProgress


def test_off_the_terminal_it_prints_nothing(capsys):
    with StepProgress("train", 1000) as bar:
        for step in range(1, 1001):
            bar.update(step, -1.0)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_on_a_terminal_it_shows_steps_rate_and_recent_return():
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=150)
    with StepProgress("pretrain", 2000, console=console) as bar:
        bar.update(600, -150.0)
        bar.update(2000, -120.0)
    shown = stream.getvalue()
    assert "pretrain" in shown and "steps/s" in shown
    assert "return -120.0" in shown and "2000/2000" in shown
