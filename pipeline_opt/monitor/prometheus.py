"""Optional Prometheus exposition of the recorder's metrics, in the text format, on a loopback port.

Invariants: listens on 127.0.0.1 only; needs no extra package (``prometheus_client`` is not required); gauges
expose their latest value, timers a summary (count, sum, p50/p95 over the last ``window`` observations), counters
and events a running total; metric names are sanitised to ``pipeline_opt_<name>`` with ``[a-zA-Z0-9_]`` only and
label values escaped, so a label can never break the format.
"""
from __future__ import annotations

import re
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

import numpy as np

from pipeline_opt.monitor.metrics import MetricPoint

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def metric_name(name: str) -> str:
    return "pipeline_opt_" + re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _labels(labels: dict) -> str:
    if not labels:
        return ""
    esc = lambda v: str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')  # noqa: E731
    inner = ",".join(f'{re.sub(r"[^a-zA-Z0-9_]", "_", k)}="{esc(v)}"' for k, v in sorted(labels.items()))
    return "{" + inner + "}"


class PrometheusExporter:
    """A recorder listener keeping what ``/metrics`` shows; ``render()`` gives the exposition text."""

    def __init__(self, window: int = 1000) -> None:
        self.window = window
        self._lock = threading.Lock()
        self._gauges: dict[tuple, float] = {}
        self._totals: dict[tuple, float] = {}
        self._timers: dict[tuple, tuple[int, float, deque]] = {}

    def __call__(self, point: MetricPoint) -> None:
        key = (point.name, tuple(sorted(point.labels.items())))
        with self._lock:
            if point.kind == "gauge":
                self._gauges[key] = point.value
            elif point.kind == "timer":
                count, total, recent = self._timers.get(key, (0, 0.0, deque(maxlen=self.window)))
                recent.append(point.value)
                self._timers[key] = (count + 1, total + point.value, recent)
            else:
                self._totals[key] = self._totals.get(key, 0.0) + point.value

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for (name, labels), value in sorted(self._gauges.items()):
                lines += _typed(name, "gauge", lines) + [f"{metric_name(name)}{_labels(dict(labels))} {value!r}"]
            for (name, labels), value in sorted(self._totals.items()):
                lines += _typed(name + "_total", "counter", lines)
                lines.append(f"{metric_name(name)}_total{_labels(dict(labels))} {value!r}")
            for (name, labels), (count, total, recent) in sorted(self._timers.items()):
                lines += _typed(name + "_seconds", "summary", lines)
                base, lab = metric_name(name) + "_seconds", dict(labels)
                for q, v in zip((0.5, 0.95), np.percentile(list(recent), [50, 95])):
                    lines.append(f"{base}{_labels({**lab, 'quantile': q})} {float(v)!r}")
                lines += [f"{base}_sum{_labels(lab)} {total!r}", f"{base}_count{_labels(lab)} {count}"]
        return "\n".join(lines) + "\n"


def _typed(name: str, kind: str, lines: list[str]) -> list[str]:
    header = f"# TYPE {metric_name(name)} {kind}"
    return [] if header in lines else [header]


class PrometheusServer:
    """Serves ``exporter.render()`` at ``http://127.0.0.1:PORT/metrics`` from a daemon thread (port 0: any free)."""

    def __init__(self, exporter: PrometheusExporter, port: int = 0) -> None:
        handler = type("Handler", (_Handler,), {"exporter": exporter})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.port = self.httpd.server_address[1]
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "PrometheusServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="prometheus")
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "PrometheusServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    exporter: PrometheusExporter

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path.split("?")[0] != "/metrics":
            self.send_error(404)
            return
        body = self.exporter.render().encode()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # keep job output clean
        pass
