"""Set-up and demo jobs: ``setup-jars``, ``check-config``, ``demo-data`` and ``demo``."""
from __future__ import annotations

from pathlib import Path

from pipeline_opt.app.conf import check_conf_dir
from pipeline_opt.app.job import Context, Param, job
from pipeline_opt.units import finite_float


def _scale(text) -> float:
    """A TPC-H scale factor in (0, 100]: 100 is about 100 GB of tables, more than a demo laptop holds."""
    return finite_float(text, "scale factor", maximum=100.0, positive=True)


SCALE = Param("scale", "TPC-H scale factor, in (0, 100]", _scale, default=1.0)


@job("setup-jars", "fetch Delta Lake's JVM jars once (Ivy, or Maven as a fallback)")
def setup_jars(ctx: Context, args) -> dict:
    spark = ctx.spark
    jars = [j for j in spark.sparkContext.getConf().get("spark.jars", "").split(",") if j]
    spark.stop()
    return {"delta_jars": len(jars), "folder": str(Path(jars[0].removeprefix("file://")).parent) if jars else None}


@job("check-config", "load every config file of a folder with its schema; one clear error for a bad one",
     Param("conf_dir", "the config folder", Path, default=Path("conf"), positional=True))
def check_config(ctx: Context, args):
    return check_conf_dir(args.conf_dir)


@job("demo-data", "generate the demo TPC-H lakehouse as Delta tables",
     Param("out", "folder of the lakehouse", Path, required=True), SCALE)
def demo_data(ctx: Context, args):
    from pipeline_opt.app.demo.lakehouse import generate

    return generate(args.out, args.scale, spark=ctx.spark)


@job("demo", "generate the demo lakehouse (if missing) and run the main job end to end",
     Param("out", "folder of the lakehouse", Path, default=Path("demo-lakehouse")), SCALE,
     Param("fresh", "regenerate the lakehouse even if it exists", flag=True),
     Param("s3", "s3://bucket/prefix the storage showcase may write to (AWS_* settings); without it, it skips"),
     Param("results", "benchmark results for the report", Path, default=Path("benchmarks/results")))
def demo(ctx: Context, args):
    from pipeline_opt.app.demo.run import run_demo

    return run_demo(args.out, args.scale, fresh=args.fresh, s3=args.s3, results=args.results)
