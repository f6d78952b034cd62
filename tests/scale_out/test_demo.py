"""The scale-out demo on the demo lakehouse's customer table (written here, small) and a local S3 server."""
import pytest

from pipeline_opt.storage.demo import COLUMNS, TABLE, run

pytestmark = pytest.mark.cluster


def test_demo_reports_cache_errors_and_lease(tmp_path):
    import numpy as np
    import pyarrow as pa
    from deltalake import write_deltalake

    lakehouse = tmp_path / "lakehouse"
    n = 5000
    write_deltalake(str(lakehouse / TABLE), pa.table({COLUMNS[0]: np.arange(n), COLUMNS[1]: np.arange(n) % 25,
                                                      COLUMNS[2]: np.linspace(-999, 9999, n)}))
    facts = run(lakehouse, tmp_path / "out")
    assert facts["rows"] == n and facts["cold_bytes_fetched"] > 0 and facts["warm_bytes_fetched"] == 0
    assert [v.split(":")[0] for v in facts["bad_input"].values()] == \
        ["EndpointUnreachableError", "CredentialsError", "BucketNotFoundError"]
    assert "demo-writer" in facts["second_writer"]
