"""Read-ahead in a background thread, bounded.

Invariants: at most ``depth`` items wait in the queue (memory stays bounded); items arrive in order; an error in the
producer re-raises in the consumer; when the consumer stops early the producer stops at its next item.
"""
from __future__ import annotations

import queue
import threading


def produce(items, depth: int):
    """Iterate ``items`` in a background thread, at most ``depth`` ahead; errors re-raise in the consumer."""
    box: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                box.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run():
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((True, done))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            put((False, e))

    thread = threading.Thread(target=run, daemon=True, name="delta-window-reader")
    thread.start()
    try:
        while True:
            ok, item = box.get()
            if not ok:
                raise item
            if item is done:
                return
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
