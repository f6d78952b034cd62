"""The storage showcase of the demo on the demo lakehouse's customer table (written here, small) and a local S3
server: the loader's file cache, the clear errors and the writer lease; without a store it says so and skips."""
import pytest

from pipeline_opt.app.demo.inputs import DemoInputs
from pipeline_opt.app.demo.storage import COLUMNS, TABLE, run

pytestmark = pytest.mark.cluster


def test_storage_showcase_reports_cache_errors_and_lease(s3, tmp_path, monkeypatch):
    import numpy as np
    import pyarrow as pa
    from deltalake import write_deltalake

    lakehouse = tmp_path / "lakehouse"
    n = 5000
    write_deltalake(str(lakehouse / TABLE), pa.table({COLUMNS[0]: np.arange(n), COLUMNS[1]: np.arange(n) % 25,
                                                      COLUMNS[2]: np.linspace(-999, 9999, n)}))
    assert "skipped" in run(DemoInputs(lakehouse, tmp_path / "out", tmp_path, None, tmp_path))
    for key, value in s3.to_env().items():
        monkeypatch.setenv(key, value)
    facts = run(DemoInputs(lakehouse, tmp_path / "out", tmp_path, "s3://lake/demo", tmp_path))
    assert facts["table"].startswith("s3://lake/demo/customer-")
    assert facts["rows"] == n and facts["cold_bytes_fetched"] > 0 and facts["warm_bytes_fetched"] == 0
    assert [v.split(":")[0] for v in facts["bad_input"].values()] == \
        ["EndpointUnreachableError", "CredentialsError", "BucketNotFoundError"]
    assert "demo-writer" in facts["second_writer"]
