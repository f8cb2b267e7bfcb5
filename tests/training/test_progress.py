import fcntl
import os
import select
import struct
import sys
import termios
from collections.abc import Callable, Iterator

import pytest

from nas.training.progress import epoch_progress


@pytest.fixture
def terminal(monkeypatch) -> Iterator[Callable[[], str]]:
    """A real pseudo-terminal; calling the fixture puts stderr on it (pytest's capture would undo that if done here,
    before the test runs) and returns what has been drawn on it since."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a new pty has 0 columns
    stream = os.fdopen(slave, "w")
    os.set_blocking(master, False)

    def drawn() -> str:
        if sys.stderr is not stream:
            monkeypatch.setattr(sys, "stderr", stream)
            return ""
        stream.flush()
        # What was written reaches the master side a moment later: wait for it (up to 1 s), then for any rest.
        chunks: list[bytes] = []
        while select.select([master], [], [], 0.05 if chunks else 1.0)[0]:
            try:
                chunks.append(os.read(master, 1 << 16))
            except BlockingIOError:
                break
        return b"".join(chunks).decode()

    yield drawn
    stream.close()
    os.close(master)


def test_the_bar_is_drawn_on_a_terminal_with_the_last_metrics(terminal, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    terminal()
    report = epoch_progress(3, "retrain")
    report(0, {"val_accuracy": 0.5})
    report(1, {"val_accuracy": 0.75})
    report(2, {"val_accuracy": 0.875})
    text = terminal()
    assert "retrain" in text and "3/3" in text and "val_accuracy=0.875" in text


def test_a_resumed_run_starts_at_its_epoch(terminal, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    terminal()
    epoch_progress(5, "retrain", position=1)(3, {"train_loss": 1.0})
    assert "4/5" in terminal()


def test_quiet_in_ci_even_on_a_terminal(terminal, monkeypatch):
    monkeypatch.setenv("CI", "true")
    terminal()
    report = epoch_progress(2, "retrain")
    report(0, {"val_accuracy": 0.5})
    report(1, {"val_accuracy": 0.5})
    assert terminal() == ""


def test_quiet_where_stderr_is_not_a_terminal(capsys, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    report = epoch_progress(2, "retrain")
    report(0, {"val_accuracy": 0.5})
    report(1, {"val_accuracy": 0.5})
    assert capsys.readouterr().err == ""
