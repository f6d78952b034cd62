"""Fixtures of the scale-out tests: a real Spark standalone cluster and a real S3-compatible server, both on
loopback, started once per session and stopped afterwards; plus small Delta tables built without Spark."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline_opt.storage import ObjectStore
from tests.harness.moto_server import MotoServer
from tests.harness.standalone import StandaloneCluster

BUCKET = "lake"
WINDOW = {"min_file_size": 100_000, "max_file_size": 1_000_000}
VACUUM = {"retention_hours": 0, "allow_unsafe": True}  # and, to delete: dry_run=False (library), execute (job)
S3_TABLE = f"s3a://{BUCKET}/events-from-cluster"
TRAINING_YML = """\
table: {table}
features: [y, part]
label: x
batch_size: 64
steps: 4
precision: fp32
optimizer: adamw
device: cpu
num_processes: 2
checkpoint_every: 2
model: {{kind: mlp, hidden: 16, layers: 1}}
"""


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """One master and two 1-core, 1 GiB workers on 127.0.0.1."""
    with StandaloneCluster(tmp_path_factory.mktemp("cluster"), workers=2, cores=1, memory="1g") as c:
        yield c


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """``ObjectStore`` of a moto S3 server on loopback that enforces credentials, with bucket ``lake``."""
    with MotoServer(tmp_path_factory.mktemp("moto"), buckets=(BUCKET,)) as store:
        yield store


def bucket_keys(store: ObjectStore, bucket: str = BUCKET) -> list[str]:
    pages = store.boto3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def write_small_table(path: str, commits: int = 12, rows: int = 200, storage_options=None) -> None:
    """A partitioned Delta table of ``commits`` small appends (one file per partition per commit)."""
    import numpy as np
    import pyarrow as pa
    from deltalake import write_deltalake

    rng = np.random.default_rng(7)
    for c in range(commits):
        ids = np.arange(c * rows, (c + 1) * rows, dtype=np.int64)
        table = pa.table({"id": ids, "part": (ids % 3).astype(np.int32),
                          "x": rng.normal(size=rows), "y": rng.integers(0, 100, rows, dtype=np.int64),
                          "label": pa.array([f"r{i}" for i in ids])})
        write_deltalake(path, table, mode="append", partition_by=["part"], storage_options=storage_options)


@pytest.fixture(scope="session")
def small_table(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tables") / "events"
    write_small_table(str(path))
    return path


@pytest.fixture
def table_copy(small_table, tmp_path):
    def copy(name: str) -> Path:
        dest = tmp_path / name
        shutil.copytree(small_table, dest)
        return dest
    return copy


def _cluster_steps(path: str, config: str, checkpoints: str) -> list[dict]:
    return [{"op": "executors", "wait_for": 2},
            {"op": "health", "path": path},
            {"op": "compact", "path": path, **WINDOW},
            {"op": "vacuum", "path": path, **VACUUM, "execute": True},
            {"op": "health", "path": path},
            {"op": "fingerprint", "path": path},
            {"op": "copy", "src": path, "dest": S3_TABLE, "partition_by": ["part"]},
            {"op": "fingerprint", "path": S3_TABLE},
            {"op": "train", "config": config, "checkpoint_dir": checkpoints},
            {"op": "train", "config": config, "checkpoint_dir": checkpoints, "steps": 6}]


class ClusterRun:
    """The cluster driver in flight; ``facts`` waits for it and names each step's result."""

    NAMES = ["executors", "health", "compact", "vacuum", "health_after", "fingerprint", "copy", "s3_fingerprint",
             "train", "train_resumed"]

    def __init__(self, run, path: Path, checkpoints: Path):
        self.run, self.path, self.checkpoints = run, path, checkpoints

    @property
    def facts(self) -> dict:
        result = self.run.result()
        return {**dict(zip(self.NAMES, result["steps"])), "seconds": dict(zip(self.NAMES, result["seconds"]))}

    def __getitem__(self, name: str):
        return self.facts[name]


@pytest.fixture(scope="session")
def cluster_run(cluster, s3, small_table, tmp_path_factory):
    """ONE driver application on the cluster (Spark start-up is the dominant cost), started at once and collected
    when a test needs it: health, verified compaction, VACUUM, content fingerprint, an s3a write, and `train`
    under TorchDistributor twice (the second resumes from the first's checkpoints)."""
    from pipeline_opt.spark import cluster_confs
    from tests.harness.driver_process import DriverRun, driver_args

    root = tmp_path_factory.mktemp("cluster-run")
    path = root / "events"
    shutil.copytree(small_table, path)
    config = root / "training.yml"
    config.write_text(TRAINING_YML.format(table=path))
    checkpoints = root / "checkpoints"
    steps = _cluster_steps(str(path), str(config), str(checkpoints))
    confs = cluster_confs(executor_memory="768m", driver_host="127.0.0.1")
    run = DriverRun(driver_args(cluster.master_url, steps, confs), env=s3.to_env(), timeout_s=840)
    yield ClusterRun(run, path, checkpoints)
    if run.proc.poll() is None:
        run.proc.kill()
        run.proc.wait()
