"""The one progress display of long work: a tqdm bar on stderr while stderr is a terminal, nothing otherwise.

Invariants: output goes to stderr only (stdout stays the job's result); when stderr is not a terminal (a job log, a
pipe, a test) the display is off and prints nothing; the bar is removed when the work ends, so the result that
follows is not interleaved with it.
"""
from __future__ import annotations

import sys
from typing import Optional

from tqdm import tqdm


class Progress:
    """Callable with one message per step, as the step starts: ``progress("orders: commit 3/10")`` shows it and
    counts the step before it as done."""

    def __init__(self, total: Optional[int], desc: str):
        self._started = False
        self._bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True,
                         disable=not sys.stderr.isatty(), bar_format="{desc}: {n}/{total} {bar:20} {elapsed}{postfix}")

    def __call__(self, message: str) -> None:
        self._bar.set_postfix_str(message, refresh=False)
        if self._started:
            self._bar.update(1)
        self._started = True
        self._bar.refresh()  # steps take seconds: show each one, not only those past tqdm's minimum interval

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
