"""The demo runs on a lakehouse-shaped folder and reports rows equal to the snapshot's live rows."""
from __future__ import annotations

import json

from pipeline_opt.loader import demo


def test_demo_on_small_lineitem(spark, tmp_path):
    cols = [f"cast(id * {i + 1} as bigint) as {c}" if i < 4 else f"cast(id / 100 as decimal(15,2)) as {c}"
            for i, c in enumerate(demo.NUMERIC)]
    spark.range(0, 5000, numPartitions=3).selectExpr(*cols).write.format("delta").save(str(tmp_path / "lh" / "lineitem"))
    facts = demo.run(tmp_path / "lh", tmp_path / "out")
    assert facts["rows"] == facts["live_rows"] == 5000
    assert facts["batches"] == 1 and facts["state_dict_bytes"] < 1000
    assert json.loads((tmp_path / "out" / "loader_demo.json").read_text())["rows"] == 5000
