"""The demo job's closing summary: one before/after line per part, "—" for what a showcase did not report, and a
failed showcase makes the job fail."""
from pipeline_opt.app.demo.run import DemoResult

HEALTH = [{"table": "lineitem", "files": 1240, "bytes": 223_000_000, "p50": 150_000, "share_inside": 0.0},
          {"table": "orders", "files": 330, "bytes": 60_000_000, "p50": 150_000, "share_inside": 0.0},
          {"table": "nation", "files": 1, "bytes": 3_000, "p50": 3_000, "share_inside": 0.0}]
SHOWCASES = {
    "tables": {"lineitem": {"files_after": 7, "share_inside_after": 1.0, "share_settled_after": 1.0,
                            "verified": True},
               "orders": {"files_after": 7, "share_inside_after": 0.0, "share_settled_after": 1.0,
                          "verified": True},
               "lineitem_queries_s": {"Q1": {"before": 9.0, "after": 3.0}, "Q6": {"before": 4.0, "after": 0.5}}},
    "loader": {"rows": 5_938_000, "live_rows": 5_938_000, "rows_per_s": 1_200_000},
    "training": {"plan": "bf16", "budget_gib": 0.0095, "predicted_peak_gib": 0.009, "fp32_adamw_predicted_gib": 0.0136,
                 "loss_start": 2.0, "loss_end": 0.5, "steps": 40},
    "cache": {"real_run": {"budget_bytes": 30_000_000, "lru_bytes_fetched_per_epoch": [60e6, 50e6, 50e6],
                           "planned_bytes_fetched_per_epoch": [60e6, 30e6, 30e6],
                           "planned_over_lru_after_the_first_epoch": 0.6}},
    "monitor": {"report": "out/monitor/report/index.html"},
}


def test_summary_has_one_line_per_part_with_its_before_and_after():
    text = DemoResult("lh", HEALTH, SHOWCASES, scale=1.0, seconds=250.0).render()
    lines = text.splitlines()
    assert lines[0] == "pipeline_opt demo, TPC-H scale 1, 250 s"
    lineitem = next(line for line in lines if line.strip().startswith("lineitem"))
    assert "1,240 → 7" in lineitem and "0% → 100%" in lineitem
    orders = next(line for line in lines if line.strip().startswith("orders"))
    assert "less than the 16 MB floor" in orders  # why orders cannot reach the window
    assert not any(line.strip().startswith("nation") for line in lines)  # not compacted: no after to show
    assert "Q1 9.00 s → 3.00 s (3.0×)" in text and "Q6 4.00 s → 0.50 s (8.0×)" in text
    assert "1,200,000 rows/s" in text and "plan bf16: predicted peak 9.2 MiB under a 9.7 MiB budget" in text
    assert "fetched 38.1 MiB less than LRU" in text
    assert lines[-1] == "report        out/monitor/report/index.html"


def test_missing_facts_show_as_a_dash_and_failures_set_exit_code():
    ok = DemoResult("lh", showcases={"monitor": {"report": "out/report/index.html"}})
    assert ok.exit_code == 0 and "loader        —" in ok.render()
    failed = DemoResult("lh", failed=["tables"])
    assert failed.exit_code == 1 and failed.render().endswith("FAILED: tables")
