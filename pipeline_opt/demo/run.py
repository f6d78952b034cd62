"""The main job, end to end on the demo lakehouse: health of every table, then each part's showcase.

Invariant: a part's showcase lives in ``pipeline_opt/<part>/demo.py`` as ``run(lakehouse, out) -> dict``; this job
only orders them, so ``make demo`` shows whatever the product can do today. A failing showcase is reported and
the job exits non-zero after running the rest.
"""
from __future__ import annotations

import importlib
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from pipeline_opt.config import format_size
from pipeline_opt.demo.lakehouse import DIMENSIONS, STREAMED, generate
from pipeline_opt.output import render_mapping, to_jsonable
from pipeline_opt.tables.health import table_health

# Showcases in data-flow order; the report comes last because it draws on the others' results.
SHOWCASES = ("tables.demo", "tables.maintenance_demo", "loader.demo", "training.demo", "cache.demo", "storage.demo",
             "monitor.demo")


@dataclass
class DemoResult:
    lakehouse: str
    health: list[dict] = field(default_factory=list)
    showcases: dict[str, dict] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def render(self) -> str:
        lines = [f"lakehouse {self.lakehouse}", "", "table health (before any optimisation)"]
        for h in self.health:
            lines.append(f"  {h['table']:<9} {h['files']:>6,} files  {format_size(h['bytes']):>10}  "
                         f"p50 file {format_size(h['p50']):>10}  {h['share_inside']:.0%} of bytes in window")
        for name, facts in self.showcases.items():
            lines += ["", f"{name}:", render_mapping(to_jsonable(facts), 1)]
        report = self.showcases.get("monitor.demo", {}).get("report")
        if report:
            lines += ["", f"report: {report}"]
        if self.failed:
            lines += ["", f"FAILED: {', '.join(self.failed)}"]
        return "\n".join(lines)


def run_demo(lakehouse: Path, scale: float = 0.1, fresh: bool = False) -> DemoResult:
    lakehouse = Path(lakehouse)
    if fresh and lakehouse.exists():
        import shutil

        shutil.rmtree(lakehouse)
    if not (lakehouse / "lineitem" / "_delta_log").is_dir():
        print(generate(lakehouse, scale).render(), file=sys.stderr)
    result = DemoResult(str(lakehouse))
    for name in (*STREAMED, *DIMENSIONS):
        h = table_health(str(lakehouse / name))
        result.health.append({"table": name, "files": h.stats.files, "bytes": h.stats.bytes,
                              "p50": h.stats.p50, "share_inside": h.stats.share_inside})
    out = lakehouse.with_name(lakehouse.name + "-output")
    for name in SHOWCASES:
        _run_showcase(name, lakehouse, out, result)
    return result


def _run_showcase(name: str, lakehouse: Path, out: Path, result: DemoResult) -> None:
    try:
        module = importlib.import_module(f"pipeline_opt.{name}")
    except ModuleNotFoundError as e:
        if e.name == f"pipeline_opt.{name}":
            return
        raise
    print(f"demo: {name} …", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        facts = module.run(lakehouse, out / name.split(".")[0])
    except Exception:  # one broken showcase must not hide the others
        traceback.print_exc()
        result.failed.append(name)
        return
    result.showcases[name] = {**(facts or {}), "seconds": round(time.perf_counter() - started, 1)}
