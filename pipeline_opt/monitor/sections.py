"""The report's sections: each turns benchmark results, table scans or the metrics table into plots and notes.

Invariant: a section builder never fails for missing input — it returns notes saying what is missing and how to
produce it; ``report.build_report`` also catches any other error per section, so one bad input costs one section.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from pipeline_opt.delta import operation_versions, read_snapshot
from pipeline_opt.monitor import extract, plots
from pipeline_opt.monitor.metrics import MetricPoint
from pipeline_opt.monitor.results import EXPECTED, Results, numeric_leaves
from pipeline_opt.monitor.store import summarize

SERIES_LABELS = ("arm", "table", "query", "op", "phase")  # labels that split a metric into lines


@dataclass
class Section:
    title: str
    images: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rows: list[tuple[str, str]] = field(default_factory=list)  # a small key → value table


def _absent(res: Results, name: str) -> str:
    if name in res.problems:
        return res.problems[name]
    return f"missing: {res.folder / (name + '.json')} (run {EXPECTED[name]})"


def table_file_sizes(path: str) -> dict[str, list[int]]:
    """File sizes from the Delta log: before the first OPTIMIZE and now, or only now if never compacted."""
    optimized = operation_versions(path, "OPTIMIZE")

    def sizes(version: int) -> list[int]:
        return read_snapshot(path, version=version).sizes.tolist()

    now = read_snapshot(path).version
    if not optimized or optimized[0] == 0:
        return {f"version {now} (never compacted)": sizes(now)}
    return {f"version {optimized[0] - 1} (before compaction)": sizes(optimized[0] - 1),
            f"version {now} (latest)": sizes(now)}


def compaction(res: Results, tables: Sequence[str], points: list[MetricPoint], out: Path,
               window: tuple[int, int]) -> Section:
    sec = Section("Compaction: file sizes and read latency")
    data = res.data.get("compaction")
    if data is None:
        sec.notes.append(_absent(res, "compaction"))
    for i, (label, before, after) in enumerate(extract.size_lists(data) if data is not None else []):
        sec.images.append(plots.size_histogram(out / f"compaction_sizes_{i}.png", {"before": before, "after": after},
                                               window, f"file sizes: {label}"))
    counts = extract.window_counts(data) if data is not None else []
    if counts:
        sec.images.append(plots.window_bars(out / "compaction_window.png", counts,
                                            "files below / inside / above the size window"))
    for i, path in enumerate(tables):
        name = "/".join(Path(str(path).rstrip("/")).parts[-2:])  # tables of one name live in several folders
        sec.images.append(plots.size_histogram(out / f"table_sizes_{i}.png", table_file_sizes(str(path)), window,
                                               f"{name}: bytes by file size, from the Delta log"))
    queries = extract.query_times(data) if data is not None else {}
    if queries:
        sec.images.append(plots.grouped_bars(out / "compaction_queries.png", queries, "seconds",
                                             f"read latency: {next(iter(queries))} (before) vs after compaction"))
    for key, unit in (("write_amplification", "bytes rewritten / bytes ingested"), ("files", "files")):
        values = extract.variant_values(data, key) if data is not None else []
        if values:
            sec.images.append(plots.hbars(out / f"compaction_{key}.png", values, unit, key.replace("_", " ")))
    pairs = extract.latency_pairs(data) if data is not None else []
    pairs += _metric_pairs(points)
    if pairs:
        sec.images.append(plots.before_after_bars(out / "read_latency.png", pairs, "seconds",
                                                  "read latency before / after compaction"))
    elif data is not None and not queries:
        sec.notes.append("compaction.json holds no before/after timings")
    if data is not None:  # the headline ratios, as the benchmark wrote them
        sec.rows += [(k, f"{v:.4g}") for k, v in numeric_leaves(data, limit=400)
                     if re.search(r"speedup|_vs_|ratio|share_inside|write_amplification$|health_s$", k)][:30]
    return sec


def _metric_pairs(points: list[MetricPoint]) -> list[tuple[str, float, float]]:
    """Median ``latency.query`` per query label where the metrics hold both phase=before and phase=after."""
    import numpy as np

    by: dict[tuple[str, str], list[float]] = {}
    for p in points:
        if p.name == "latency.query" and p.labels.get("phase") in ("before", "after"):
            by.setdefault((p.labels.get("query", "query"), p.labels["phase"]), []).append(p.value)
    queries = sorted({q for q, _ in by})
    return [(f"{q} (metrics)", float(np.median(by[q, "before"])), float(np.median(by[q, "after"])))
            for q in queries if (q, "before") in by and (q, "after") in by]


def cache(res: Results, out: Path) -> Section:
    sec = Section("Cache: miss-ratio curves per policy, with the offline bound")
    data = res.data.get("cache")
    if data is None:
        sec.notes.append(_absent(res, "cache"))
        return sec
    for i, curves in enumerate(extract.cache_curves(data)):
        sec.images.append(plots.miss_ratio_curves(out / f"cache_mrc_{i}.png", curves.policies, curves.bound,
                                                  curves.metric, f"trace: {curves.trace}"))
        if not curves.bound:
            sec.notes.append(f"{curves.trace}: no bound in the results")
    if not sec.images:
        sec.notes.append("cache.json holds no per-policy results")
    return sec


def training(res: Results, out: Path) -> Section:
    sec = Section("Training plans: memory and speed")
    data = res.data.get("training_memory")
    if data is None:
        sec.notes.append(_absent(res, "training_memory"))
        data = res.data.get("training_memory_small")
        if data is None:
            return sec
        sec.notes.append("showing training_memory_small.json: the small CPU variant, not the GPU reference model")
    points, axes = extract.training_points(data)
    if points:
        device = data.get("device") or data.get("gpu") if isinstance(data, dict) else None
        title = f"training plans ({device})" if device else "training plans"
        sec.images.append(plots.scatter(out / "training_plans.png", points, axes, title))
    else:
        sec.notes.append("training_memory.json holds no memory/speed pairs")
    losses = extract.loss_curves(data)
    if losses:
        lines = {label: (list(range(len(v))), v) for label, v in losses.items()}
        sec.images.append(plots.series(out / "training_losses.png", lines, "loss", "loss per step of each plan",
                                       xlabel="step"))
    return sec


def loader(res: Results, out: Path) -> Section:
    sec = Section("Loader throughput vs raw scan")
    data = res.data.get("loader")
    if data is None:
        sec.notes.append(_absent(res, "loader"))
        return sec
    items = extract.throughputs(data)
    if items:
        raw = next((v for name, v in items if "pyarrow_scan" in name or "raw" in name), None)
        sec.images.append(plots.hbars(out / "loader_throughput.png", items, "rows/s",
                                      "rows/s per reader" + (" (ratio to the raw pyarrow scan)" if raw else ""),
                                      reference=raw))
    else:
        sec.notes.append("loader.json holds no throughput figures")
    ratios = data.get("ratios") if isinstance(data, dict) else None
    if isinstance(ratios, dict):
        sec.rows += [(str(k), f"{v:.3g}") for k, v in ratios.items() if isinstance(v, (int, float))]
    for key in ("memory_growth_4x_vs_1x",):
        if isinstance(data, dict) and isinstance(data.get(key), (int, float)):
            sec.rows.append((key, f"{data[key]:.3g}"))
    return sec


def metrics(points: list[MetricPoint], source: str, out: Path) -> Section:
    sec = Section("Metrics recorded by the jobs")
    if not points:
        sec.notes.append(f"no metrics table at {source}" if source else "no metrics table given (--metrics)")
        return sec
    summary = summarize(points, by_label=SERIES_LABELS)
    lat = [(s.name, s.p50, s.p95) for s in summary if s.name.startswith("latency.")]
    if lat:
        sec.images.append(plots.percentiles(out / "metrics_latency.png", lat, "seconds", "latency p50 / p95"))
    for prefix, ylabel in (("cache.", "hit rate"), ("memory.", "bytes"), ("throughput.", "per second")):
        lines: dict[str, tuple[list[float], list[float]]] = {}
        for p in sorted(points, key=lambda p: p.ts):
            if p.name.startswith(prefix):
                keys = [f"{k}={p.labels[k]}" for k in SERIES_LABELS if k in p.labels]
                ts, vs = lines.setdefault(" ".join([p.name, *keys]), ([], []))
                ts.append(p.ts)
                vs.append(p.value)
        if lines:
            sec.images.append(plots.series(out / f"metrics_{prefix.rstrip('.')}.png", lines, ylabel, prefix + "*"))
    sec.rows = [(s.name, f"n={s.count} p50={s.p50:.4g} p95={s.p95:.4g} {s.unit}") for s in summary]
    return sec


def other_results(res: Results) -> Section:
    sec = Section("Other benchmark results")
    for name in sorted(n for n in res.data if not any(n == e or n.startswith(e + "_") for e in EXPECTED)):
        sec.rows += [(f"{name}: {k}", f"{v:.6g}") for k, v in numeric_leaves(res.data[name], limit=30)]
    return sec


def changes(points: list[MetricPoint], configs_root: str) -> Section:
    """Rollbacks recorded in the metrics and every change logged in the versioned config store."""
    from pipeline_opt.monitor.versions import ConfigStore

    sec = Section("Rollbacks and config changes")
    for p in points:
        if p.name == "event.rollback":
            sec.rows.append((f"rollback of {p.labels.get('config', '?')}" + (" (drill)" if p.labels.get("drill")
                             else ""), p.labels.get("reason", "")))
    if configs_root:
        store = ConfigStore(configs_root)
        for name in store.names():
            for a in store.log(name):
                sec.rows.append((f"{a.name}: {a.action} → v{a.version}", a.reason or "-"))
    if not sec.rows:
        sec.notes.append("no rollbacks recorded" + ("" if configs_root else "; no config store given (--configs)"))
    return sec
