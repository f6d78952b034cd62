"""The bounded read-ahead thread: order kept, errors surface in the consumer, early stop ends the producer."""
from __future__ import annotations

import threading

import pytest

from pipeline_opt.loader.prefetch import produce


def test_order_and_completion():
    assert list(produce(iter(range(50)), depth=2)) == list(range(50))


def test_error_reaches_consumer():
    def items():
        yield 1
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        list(produce(items(), depth=2))


def test_early_stop_ends_producer():
    made = []

    def items():
        for i in range(10_000):
            made.append(i)
            yield i

    gen = produce(items(), depth=2)
    assert next(gen) == 0
    gen.close()
    assert not any(t.name == "delta-window-reader" and t.is_alive() for t in threading.enumerate())
    assert len(made) < 10
