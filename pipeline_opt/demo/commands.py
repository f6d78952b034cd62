"""``pipeline-opt`` subcommands that set up and demonstrate the whole product."""
from __future__ import annotations

from pathlib import Path

from pipeline_opt.cli import add_json_flag


def register(sub) -> None:
    p = sub.add_parser("setup-jars", help="fetch Delta Lake's JVM jars once (Ivy, or Maven as a fallback)")
    p.set_defaults(func=_setup_jars)

    p = sub.add_parser("demo-data", help="generate the demo TPC-H lakehouse as Delta tables")
    p.add_argument("--out", required=True, type=Path, help="folder of the lakehouse")
    p.add_argument("--scale", type=float, default=0.1, help="TPC-H scale factor (default 0.1)")
    add_json_flag(p)
    p.set_defaults(func=_demo_data)

    p = sub.add_parser("demo", help="generate the demo lakehouse (if missing) and run the main job end to end")
    p.add_argument("--out", type=Path, default=Path("demo-lakehouse"), help="folder of the lakehouse")
    p.add_argument("--scale", type=float, default=0.1, help="TPC-H scale factor (default 0.1)")
    p.add_argument("--fresh", action="store_true", help="regenerate the lakehouse even if it exists")
    add_json_flag(p)
    p.set_defaults(func=_demo)


def _setup_jars(args):
    from pipeline_opt.spark import get_spark

    spark = get_spark("pipeline_opt-setup")
    jars = [j for j in spark.sparkContext.getConf().get("spark.jars", "").split(",") if j]
    spark.stop()
    return {"delta_jars": len(jars), "folder": str(Path(jars[0].removeprefix("file://")).parent) if jars else None}


def _demo_data(args):
    from pipeline_opt.demo.lakehouse import generate

    return generate(args.out, args.scale)


def _demo(args):
    from pipeline_opt.demo.run import run_demo

    return run_demo(args.out, args.scale, fresh=args.fresh)
