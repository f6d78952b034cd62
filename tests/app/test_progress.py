"""The progress display: a bar on a terminal's stderr, nothing at all when stderr is not a terminal."""
import io
import sys

from pipeline_opt.app.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_no_output_when_stderr_is_not_a_terminal(capsys):
    with Progress(2, "demo") as progress:
        progress("tables")
        progress("loader")
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_a_terminal_sees_the_current_step_and_the_bar_is_cleared(monkeypatch):
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    with Progress(2, "demo") as progress:
        progress("tables")
        progress("loader")
    text = screen.getvalue()
    assert "demo: 1/2" in text and ", loader" in text
    assert text.endswith("\r")  # removed at the end, so the result that follows starts on a clean line
