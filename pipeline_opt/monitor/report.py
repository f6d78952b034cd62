"""The report: one HTML page with PNG plots, from benchmark results, table scans and the metrics table.

Invariants: writes only inside ``out`` (``index.html`` plus ``*.png`` beside it, referenced by relative name, so
the folder can be moved or published as is); never fails for a missing or unreadable input — the page says
which inputs are missing and how to produce them; one section's failure is reported on the page, not raised.
"""
from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from pipeline_opt.monitor import loop, sections
from pipeline_opt.monitor.results import load_results
from pipeline_opt.monitor.store import read_metrics
from pipeline_opt.tables.settings import DEFAULT_WINDOW, Window


@dataclass
class ReportResult:
    path: str
    images: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # benchmark results not found
    notes: list[str] = field(default_factory=list)
    metrics_points: int = 0

    def render(self) -> str:
        lines = [f"report: {self.path}", f"  {len(self.images)} plots, {self.metrics_points} metric points"]
        if self.missing:
            lines.append(f"  missing benchmark results: {', '.join(self.missing)}")
        return "\n".join(lines)


def build_report(out: str | Path, results_dir: str | Path = "benchmarks/results",
                 metrics_table: Optional[str | Path] = None, tables: Sequence[str | Path] = (),
                 window: Window = DEFAULT_WINDOW, configs: Optional[str | Path] = None,
                 settings: Optional[str | Path] = None) -> ReportResult:
    """``configs``: a versioned config store whose changes to list; ``settings``: the settings store of the jobs
    (``config_store`` of ``conf/monitor.yml``), whose rollouts to show."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res = load_results(results_dir)
    points = read_metrics(metrics_table) if metrics_table else []
    source = str(metrics_table or "")
    builders = [
        ("Compaction", lambda: sections.compaction(res, [str(t) for t in tables], points, out,
                                                           (window.min_size, window.max_size))),
        ("Cache", lambda: sections.cache(res, out)),
        ("Training", lambda: sections.training(res, out)),
        ("Loader", lambda: sections.loader(res, out)),
        ("Metrics", lambda: sections.metrics(points, source, out)),
        ("Trends", lambda: loop.trends(points)),
        ("Rollouts", lambda: loop.rollouts(points, str(settings or configs or ""))),
        ("Changes", lambda: sections.changes(points, str(configs or ""))),
        ("Other", lambda: sections.other_results(res)),
    ]
    built = []
    for title, build in builders:
        try:
            built.append(build())
        except Exception as e:  # one bad input costs one section, never the report
            built.append(sections.Section(title, notes=[f"could not render: {type(e).__name__}: {e}"]))
    page = out / "index.html"
    page.write_text(_html(built, res, source))
    return ReportResult(str(page), [str(i) for s in built for i in s.images], list(res.missing),
                        [n for s in built for n in s.notes], len(points))


def _html(built: list[sections.Section], res, metrics_source: str) -> str:
    esc = html.escape
    found = ", ".join(sorted(res.data)) or "none"
    missing = ", ".join(res.missing) or "none"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>pipeline_opt report</title>",
        "<style>body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}"
        "img{max-width:100%;border:1px solid #ddd;margin:.4em 0}.note{color:#a40}"
        "td{padding:2px 10px;font-size:90%}</style></head><body>",
        "<h1>pipeline_opt report</h1>",
        f"<p>Written {esc(time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))}. "
        f"Benchmark results from <code>{esc(str(res.folder))}</code>: found {esc(found)}; "
        f"<b>missing {esc(missing)}</b>. Metrics table: <code>{esc(metrics_source or 'none')}</code>.</p>",
    ]
    for sec in built:
        parts.append(f"<h2>{esc(sec.title)}</h2>")
        parts += [f"<p class='note'>{esc(n)}</p>" for n in sec.notes]
        parts += [f"<img src='{esc(Path(i).name)}' alt='{esc(Path(i).stem)}'>" for i in sec.images]
        if sec.rows:
            parts.append("<table>" + "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in sec.rows)
                         + "</table>")
        if not (sec.notes or sec.images or sec.rows):
            parts.append("<p>nothing to show</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
