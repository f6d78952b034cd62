"""The recorder jobs call as they run: latency, throughput, cache hit rate, memory and events.

Invariants: recording never raises into the job (a failing sink loses points, not the job's work; a failing
listener misses that point; both failures are kept in ``Recorder.sink_errors``); every point carries the run id,
the job and string labels; names are fixed strings (``METRICS``) so triggers and the report find them; points are
buffered and flushed to the sinks in batches (``flush_every``), on ``flush()`` and when the recorder is used as a
context manager and closes.
"""
from __future__ import annotations

import os
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Optional, Protocol, Sequence

# name → unit; the names triggers, Prometheus and the report rely on.
METRICS = {
    "latency.query": "s", "latency.step": "s",  # latency.<op> for any timed op
    "throughput.rows_per_s": "rows/s", "throughput.tokens_per_s": "tokens/s",
    "cache.hit_rate": "ratio", "cache.byte_hit_rate": "ratio",
    "memory.host_rss_bytes": "bytes", "memory.gpu_allocated_bytes": "bytes", "memory.gpu_peak_bytes": "bytes",
    "memory.gpu_reserved_bytes": "bytes",
    "event.oom": "count",
}


@dataclass(frozen=True)
class MetricPoint:
    """One observation. ``kind``: timer (seconds), gauge (a level), counter (an increment) or event."""

    ts: float  # seconds since the epoch, UTC
    name: str
    kind: str
    value: float
    unit: str = ""
    job: str = ""
    run_id: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


class Sink(Protocol):
    def write(self, points: list[MetricPoint]) -> None: ...


class _Server(Protocol):
    """What the recorder needs of the Prometheus server it owns (``prometheus.PrometheusServer``)."""

    def stop(self) -> None: ...


class MemorySink:
    """Keeps every flushed point in a list (tests, the report of a run in progress)."""

    def __init__(self) -> None:
        self.points: list[MetricPoint] = []

    def write(self, points: list[MetricPoint]) -> None:
        self.points.extend(points)


@dataclass
class Span:
    """What a ``timed`` block may add before it ends: rows and tokens turn into throughput points."""

    rows: int = 0
    tokens: int = 0
    seconds: float = 0.0


def is_oom(error: BaseException) -> bool:
    """True for host and device out-of-memory errors (torch's, CUDA's message form, Python's MemoryError)."""
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return True
    return "out of memory" in str(error).lower()


class Recorder:
    """Buffers metric points and hands them to sinks and listeners (rollback guards, Prometheus)."""

    def __init__(self, job: str = "pipeline_opt", sinks: Sequence[Sink] = (), run_id: Optional[str] = None,
                 clock: Callable[[], float] = time.time, flush_every: int = 500) -> None:
        self.job, self.run_id = job, run_id or uuid.uuid4().hex[:12]
        self.sinks, self.clock, self.flush_every = list(sinks), clock, flush_every
        self.listeners: list[Callable[[MetricPoint], None]] = []
        self.sink_errors: list[str] = []
        # a PrometheusServer serving this recorder's metrics, stopped on close()
        self.prometheus: Optional[_Server] = None
        self._buffer: list[MetricPoint] = []

    # ------------------------------------------------------------------ recording
    def record(self, name: str, value: float, kind: str = "gauge", unit: Optional[str] = None,
               **labels: object) -> MetricPoint:
        unit = unit if unit is not None else METRICS.get(name, "")
        point = MetricPoint(self.clock(), name, kind, float(value), unit, self.job, self.run_id,
                            {k: str(v) for k, v in labels.items()})
        self._buffer.append(point)
        for listener in self.listeners:
            try:
                listener(point)
            except Exception as e:  # a failing guard or exporter must not fail the job either
                self.sink_errors.append(f"listener {getattr(listener, '__qualname__', listener)}: {e}")
        if len(self._buffer) >= self.flush_every:
            self.flush()
        return point

    def gauge(self, name: str, value: float, unit: Optional[str] = None, **labels: object) -> MetricPoint:
        return self.record(name, value, "gauge", unit, **labels)

    def counter(self, name: str, increment: float = 1, unit: Optional[str] = None, **labels: object) -> MetricPoint:
        return self.record(name, increment, "counter", unit, **labels)

    @contextmanager
    def timed(self, op: str, **labels: object) -> Iterator[Span]:
        """Times the block as ``latency.<op>``; rows/tokens set on the span become throughput; an OOM is recorded."""
        span = Span()
        start = time.perf_counter()
        try:
            yield span
        except BaseException as e:
            if is_oom(e):
                self.oom(op=op, error=type(e).__name__, **labels)
            raise
        span.seconds = time.perf_counter() - start
        self.record(f"latency.{op}", span.seconds, "timer", "s", **labels)
        if span.rows and span.seconds > 0:
            self.gauge("throughput.rows_per_s", span.rows / span.seconds, None, op=op, **labels)
        if span.tokens and span.seconds > 0:
            self.gauge("throughput.tokens_per_s", span.tokens / span.seconds, None, op=op, **labels)

    def cache(self, hits: int, misses: int, hit_bytes: int = 0, miss_bytes: int = 0,
              **labels: object) -> None:
        """Hit rate by objects and, when bytes are given, by bytes."""
        if hits + misses:
            self.gauge("cache.hit_rate", hits / (hits + misses), None, **labels)
        if hit_bytes + miss_bytes:
            self.gauge("cache.byte_hit_rate", hit_bytes / (hit_bytes + miss_bytes), None, **labels)

    def memory(self, **labels: object) -> dict[str, int]:
        """Samples host RSS, and GPU memory when torch is already loaded and sees CUDA."""
        sample = memory_sample()
        for name, value in sample.items():
            self.gauge(name, value, None, **labels)
        return sample

    def oom(self, **labels: object) -> MetricPoint:
        return self.record("event.oom", 1, "event", None, **labels)

    # ------------------------------------------------------------------ flushing
    def flush(self) -> int:
        """Writes the buffer to every sink; returns the number of points written."""
        points, self._buffer = self._buffer, []
        for sink in self.sinks:
            try:
                sink.write(points)
            except Exception as e:  # monitoring must never take the job down
                self.sink_errors.append(f"{type(sink).__name__}: {e}")
        return len(points)

    def close(self) -> None:
        self.flush()
        if self.prometheus is not None:
            self.prometheus.stop()
            self.prometheus = None

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def host_rss_bytes() -> int:
    """Current resident set size of this process (Linux ``/proc``; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def memory_sample() -> dict[str, int]:
    sample = {"memory.host_rss_bytes": host_rss_bytes()}
    torch = sys.modules.get("torch")  # never import torch just to look: it costs seconds
    if torch is not None and torch.cuda.is_available():
        sample["memory.gpu_allocated_bytes"] = int(torch.cuda.memory_allocated())
        sample["memory.gpu_peak_bytes"] = int(torch.cuda.max_memory_allocated())
    return sample
