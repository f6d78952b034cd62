"""Cluster jobs: ``executors`` — what the session's master gave this application."""
from __future__ import annotations

import time

from pipeline_opt.app.job import Context, Param, job


@job("executors", "executors registered with this application's driver (waits for late ones)",
     Param("wait_for", "wait until this many have registered", int, default=0),
     Param("timeout_s", "give up waiting after this many seconds", float, default=120.0))
def executors(ctx: Context, args) -> dict:
    """Workers register after the session starts and a busy machine makes them late, hence the wait."""
    spark = ctx.spark
    deadline = time.monotonic() + args.timeout_s
    while True:
        count = int(spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size()) - 1  # the driver is listed too
        if count >= args.wait_for or time.monotonic() > deadline:
            return {"executors": count, "master": spark.sparkContext.master}
        time.sleep(0.5)
