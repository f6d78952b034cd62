"""The demo job's summary: the report path comes last, and a failed showcase makes the job fail."""
from pipeline_opt.app.demo.run import DemoResult


def test_report_path_is_the_closing_line_and_failures_set_exit_code():
    ok = DemoResult("lh", showcases={"monitor": {"report": "out/report/index.html"}})
    assert ok.render().splitlines()[-1] == "report: out/report/index.html" and ok.exit_code == 0
    failed = DemoResult("lh", failed=["tables"])
    assert failed.exit_code == 1 and failed.render().endswith("FAILED: tables")
