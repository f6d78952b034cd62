"""PNG plots of the report (matplotlib, Agg backend: no display needed).

Invariants: each function writes one PNG at ``path`` and returns it; figures are closed after saving, so a long
report does not hold memory; labels come from the data, units are on the axes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    _plt().close(fig)
    return path


def size_histogram(path: Path, series: Mapping[str, Sequence[float]], window: tuple[int, int], title: str) -> Path:
    """Where a table's bytes sit by file size: one histogram per series, weighted by bytes (a few big files
    show as clearly as many small ones), on a log size axis, with the target window shaded and each series' share
    of bytes inside it in the legend."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    sizes = [np.asarray(s, dtype=float) for s in series.values() if len(s)]
    lo = max(1.0, min([float(s.min()) for s in sizes] + [window[0] / 10]))
    hi = max([float(s.max()) for s in sizes] + [window[1], lo * 10])
    bins = np.logspace(np.log10(lo), np.log10(hi) + 0.05, 40)
    ax.axvspan(window[0], window[1], color="green", alpha=0.10, label="target window")
    for label, values in series.items():
        s = np.asarray(values, dtype=float)
        inside = float(s[(s >= window[0]) & (s <= window[1])].sum() / s.sum()) if s.sum() else 0.0
        ax.hist(np.maximum(s, lo), bins=bins, weights=s / 2**20, alpha=0.6,
                label=f"{label}: {len(s):,} files, {inside:.0%} of bytes in window")
    ax.set(xscale="log", xlabel="file size (bytes)", ylabel="MiB in files of this size", title=title)
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, path)


def before_after_bars(path: Path, pairs: list[tuple[str, float, float]], unit: str, title: str) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(pairs) + 2), 3.6))
    x = np.arange(len(pairs))
    before, after = [p[1] for p in pairs], [p[2] for p in pairs]
    ax.bar(x - 0.2, before, 0.4, label="before")
    ax.bar(x + 0.2, after, 0.4, label="after")
    for i, (b, a) in enumerate(zip(before, after)):
        if a:
            text = f"{b / a:.1f}× faster" if b >= a else f"{a / b:.1f}× slower"
            ax.annotate(text, (i + 0.2, a), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, [p[0] for p in pairs], rotation=20, ha="right", fontsize=8)
    ax.set(ylabel=unit, title=title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def miss_ratio_curves(path: Path, policies: dict[str, list[tuple[float, float]]], bound: list[tuple[float, float]],
                      metric: str, title: str) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    colors = plt.cm.tab20(np.linspace(0, 1, max(len(policies), 2)))
    for color, (name, points) in zip(colors, sorted(policies.items())):
        xs, ys = zip(*points)
        ours = name == "learned"  # the project's own policy stands out
        ax.plot(xs, ys, marker="o", ms=3, color="crimson" if ours else color, lw=2.5 if ours else 1, label=name)
    if bound:
        xs, ys = zip(*bound)
        ax.plot(xs, ys, "k--", lw=2, label="offline bound")
    ax.set(xlabel="cache size (share of working set)", ylabel=metric.replace("_", " "), title=title)
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)


def scatter(path: Path, points: list[tuple[str, float, float]], axes: tuple[str, str], title: str) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, x, y in points:
        ax.scatter([x], [y], s=18)
        ax.annotate(label, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set(xlabel=axes[0], ylabel=axes[1], title=title)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def hbars(path: Path, items: list[tuple[str, float]], unit: str, title: str,
          reference: Optional[float] = None) -> Path:
    """Horizontal bars; with ``reference`` each bar is annotated with its ratio to it."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(items) + 1.5))
    labels, values = [i[0] for i in items], [i[1] for i in items]
    ax.barh(np.arange(len(items)), values)
    if reference:
        for i, v in enumerate(values):
            ax.annotate(f"{v / reference:.2f}×", (v, i), va="center", xytext=(3, 0), textcoords="offset points",
                        fontsize=7)
    ax.set_yticks(np.arange(len(items)), [label[-50:] for label in labels], fontsize=7)
    ax.invert_yaxis()
    ax.set(xlabel=unit, title=title)
    return _save(fig, path)


def percentiles(path: Path, rows: list[tuple[str, float, float]], unit: str, title: str) -> Path:
    """Grouped p50 / p95 bars per metric."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(rows) + 2), 3.6))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r[1] for r in rows], 0.4, label="p50")
    ax.bar(x + 0.2, [r[2] for r in rows], 0.4, label="p95")
    ax.set_xticks(x, [r[0] for r in rows], rotation=20, ha="right", fontsize=8)
    ax.set(ylabel=unit, title=title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def series(path: Path, lines: Mapping[str, tuple[Sequence[float], Sequence[float]]], ylabel: str, title: str,
           xlabel: str = "seconds since first point") -> Path:
    """Values over time (or steps), one line per label; x is shifted so the first point is at 0."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    t0 = min((min(ts) for ts, _ in lines.values() if len(ts)), default=0.0)
    for label, (ts, values) in sorted(lines.items()):
        dense = len(values) > 40  # many noisy samples read better as dots than as a zig-zag line
        ax.plot(np.asarray(ts) - t0, values, marker=".", ms=3, ls="" if dense else "-", label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=7)
    return _save(fig, path)


def window_bars(path: Path, rows: list[tuple[str, dict[str, int]]], title: str) -> Path:
    """Stacked file counts below / inside / above the size window, one bar per label."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.6))
    left = np.zeros(len(rows))
    for part, color in (("below", "tab:red"), ("inside", "tab:green"), ("above", "tab:orange")):
        values = np.array([r[1][part] for r in rows], dtype=float)
        ax.barh(np.arange(len(rows)), values, left=left, color=color, label=f"{part} window")
        left += values
    for i, (_, c) in enumerate(rows):  # counts differ by orders of magnitude: say them, do not only draw them
        total = sum(c.values())
        ax.annotate(f"{total:,} files, {c['inside'] / max(total, 1):.0%} inside", (left[i], i), va="center",
                    xytext=(3, 0), textcoords="offset points", fontsize=7)
    ax.set_yticks(np.arange(len(rows)), [r[0][-50:] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, left.max() * 1.35 if len(left) and left.max() else 1)
    ax.set(xlabel="files", title=title)
    ax.legend(fontsize=7)
    return _save(fig, path)


def grouped_bars(path: Path, groups: dict[str, dict[str, float]], unit: str, title: str) -> Path:
    """One cluster per key (e.g. query), one bar per variant; each bar after the first says its speed-up over it."""
    plt = _plt()
    keys = sorted({k for g in groups.values() for k in g})
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(keys) + 2), 3.8))
    width = 0.8 / max(len(groups), 1)
    first = next(iter(groups.values()), {})
    for i, (variant, values) in enumerate(groups.items()):
        xs = np.arange(len(keys)) + (i - (len(groups) - 1) / 2) * width
        ys = [values.get(k, np.nan) for k in keys]
        ax.bar(xs, ys, width, label=variant)
        for x, k, y in zip(xs, keys, ys):
            if i and first.get(k) and y and np.isfinite(y):
                ax.annotate(f"{first[k] / y:.1f}×", (x, y), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(np.arange(len(keys)), keys)
    ax.set(ylabel=unit, title=title)
    ax.legend(fontsize=8)
    return _save(fig, path)
