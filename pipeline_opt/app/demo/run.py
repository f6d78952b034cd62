"""The main job, end to end on the demo lakehouse: health of every table, then each part's showcase.

Invariants: the showcases run in data-flow order (the report last, since it draws on the others' output); each is a
``run(inputs) -> dict`` in this package, imported by name here, so a missing one is an import error, never a silent
skip; a failing showcase is reported and the job exits non-zero after running the rest; inputs come from the demo
lakehouse and the caller, never from the source tree.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from pipeline_opt.app.demo import cache, loader, maintenance, monitor, storage, tables, training
from pipeline_opt.app.demo.inputs import DemoInputs
from pipeline_opt.app.demo.lakehouse import DIMENSIONS, MARKER, STREAMED, generate, is_demo_lakehouse
from pipeline_opt.app.demo.summary import summary_lines
from pipeline_opt.app.progress import Progress
from pipeline_opt.errors import PipelineOptError
from pipeline_opt.output import to_jsonable
from pipeline_opt.tables.health import table_health

SHOWCASES: tuple[tuple[str, Callable[[DemoInputs], dict]], ...] = (
    ("tables", tables.run), ("maintenance", maintenance.run), ("loader", loader.run), ("training", training.run),
    ("cache", cache.run), ("storage", storage.run), ("monitor", monitor.run))


@dataclass
class DemoResult:
    lakehouse: str
    health: list[dict] = field(default_factory=list)
    showcases: dict[str, dict] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    scale: Optional[float] = None  # of the lakehouse, when this run generated it
    seconds: Optional[float] = None
    facts_path: Optional[str] = None  # every showcase's facts, as JSON

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def render(self) -> str:
        lines = summary_lines(self.health, self.showcases, self.seconds, self.scale)
        if self.facts_path:
            lines.append(f"all facts     {self.facts_path}")
        if self.failed:
            lines += ["", f"FAILED: {', '.join(self.failed)}"]
        return "\n".join(lines)


def run_demo(lakehouse: Path, scale: float = 0.1, fresh: bool = False, s3: Optional[str] = None,
             results: Path = Path("benchmarks/results")) -> DemoResult:
    """Generate the lakehouse unless it exists (``fresh``: always), then report health and run every showcase.

    ``s3``: an ``s3://bucket/prefix`` the storage showcase may write to (with ``AWS_*`` settings); ``results``:
    the benchmark results the report shows.
    """
    started = time.perf_counter()
    lakehouse = Path(lakehouse)
    if fresh and lakehouse.exists():
        if not is_demo_lakehouse(lakehouse):  # never delete a folder the demo did not make
            raise PipelineOptError(f"{lakehouse}: not a demo lakehouse (no {MARKER}); --fresh deletes only those")
        shutil.rmtree(lakehouse)
    generated = not (lakehouse / "lineitem" / "_delta_log").is_dir()
    if generated:
        print(generate(lakehouse, scale).render(), file=sys.stderr)
    result = DemoResult(str(lakehouse), scale=scale if generated else _recorded_scale(lakehouse))
    for name in (*STREAMED, *DIMENSIONS):
        h = table_health(str(lakehouse / name))
        result.health.append({"table": name, "files": h.stats.files, "bytes": h.stats.bytes,
                              "p50": h.stats.p50, "share_inside": h.stats.share_inside})
    out = lakehouse.with_name(lakehouse.name + "-output")
    with Progress(len(SHOWCASES), "demo") as progress:
        for name, showcase in SHOWCASES:
            progress(name)
            _run_showcase(name, showcase, DemoInputs(lakehouse, out / name, out, s3, Path(results)), result)
    result.seconds = time.perf_counter() - started
    facts = out / "demo-facts.json"
    facts.write_text(json.dumps(to_jsonable({"lakehouse": result.lakehouse, "health": result.health,
                                             "showcases": result.showcases, "failed": result.failed}), indent=2))
    result.facts_path = str(facts)
    return result


def _recorded_scale(lakehouse: Path) -> Optional[float]:
    """The scale ``generate`` wrote into the lakehouse's marker ("TPC-H scale 1"), if it reads as one."""
    try:
        return float((lakehouse / MARKER).read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def _run_showcase(name: str, showcase: Callable[[DemoInputs], dict], inputs: DemoInputs,
                  result: DemoResult) -> None:
    started = time.perf_counter()
    try:
        facts = showcase(inputs)
    except Exception:  # one broken showcase must not hide the others
        traceback.print_exc()
        result.failed.append(name)
        return
    result.showcases[name] = {**(facts or {}), "seconds": round(time.perf_counter() - started, 1)}
