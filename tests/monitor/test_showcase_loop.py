"""The demo's closed loop on a small real table: real health runs record, a rollout splits the tables, the report
shows it — nothing written next to the tables."""
from __future__ import annotations

import pipeline_opt.app.jobs  # noqa: F401  (registers the jobs the showcase runs)
from pipeline_opt.app.demo.monitor import LOOP_KEY, closed_loop
from pipeline_opt.monitor.report import build_report

from .conftest import small_files_table


def test_the_loop_showcase_runs_real_jobs_and_reports_them(tmp_path):
    lake = tmp_path / "lake"
    tables = [small_files_table(lake / name, files=3) for name in ("events16", "events2")]
    before = sorted(p.relative_to(lake) for p in lake.rglob("*"))
    out = tmp_path / "out"
    out.mkdir()
    facts = closed_loop(tables, out)
    assert facts["runs"] == 6 and facts["files_by_table"] == {"events16": 3, "events2": 3}
    assert facts["rollout"]["status"] == "running" and facts["rollout"]["samples"] is not None
    assert facts["arms"]["events16"].startswith("candidate (floor 8,000,000")
    assert facts["arms"]["events2"].startswith("baseline (floor 16,000,000")
    assert sorted(p.relative_to(lake) for p in lake.rglob("*")) == before  # the tables were only read
    report = build_report(out / "report", tmp_path / "no-results", out / "_metrics", settings=out / "_settings")
    page = (out / "report" / "index.html").read_text()
    assert report.metrics_points == facts["job_points"]
    assert f"{LOOP_KEY}: {LOOP_KEY}-v2" in page and "events16: files (health)" in page and "3 → 3 → 3" in page
