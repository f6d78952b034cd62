"""``pipeline-opt stream`` reports the delivered rows, and user errors exit 2 with one line."""
from __future__ import annotations

import json

from pipeline_opt.app.cli import main


def test_stream_json(dv_table, capsys):
    path, expected = dv_table
    assert main(["stream", str(path), "--shuffle", "--batch-size", "128", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows_delivered"] == out["total_rows"] == len(expected)
    assert out["batches_delivered"] == out["batches_per_rank"]
    # the read-ahead the loader.prefetch setting controls: same rows whatever its depth
    assert main(["stream", str(path), "--shuffle", "--batch-size", "128", "--prefetch", "7", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows_delivered"] == len(expected)
    assert main(["stream", str(path), "--prefetch", "0"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_stream_unknown_column_exits_2(dv_table, capsys):
    assert main(["stream", str(dv_table[0]), "--columns", "id,nope"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and len(err.strip().splitlines()) == 1
