"""spark-submit job: VACUUM the tables of conf/tables.yml with their configured retention (dry run unless
--execute); one JSON line per table with the files and bytes deleted or to delete.

    spark-submit --packages "$DELTA" --py-files dist/pipeline_opt.zip jobs/vacuum_tables.py --config conf/tables.yml
"""
import sys

from pipeline_opt.tables.maintenance_jobs import job_parser


def parse_args(argv=None):
    p = job_parser("vacuum_tables", __doc__)
    p.add_argument("--retention-hours", type=float, help="override every table's retention (default: config, 168)")
    p.add_argument("--execute", action="store_true", help="delete the files (default: dry run)")
    p.add_argument("--i-know-retention-is-unsafe", dest="allow_unsafe", action="store_true",
                   help="allow a retention below 168 hours")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from pipeline_opt.spark import get_spark
    from pipeline_opt.tables.maintenance_jobs import run_job, vacuum_tables

    return run_job("vacuum_tables", lambda: vacuum_tables(
        get_spark("pipeline_opt-vacuum_tables"), args.config, args.table, args.retention_hours, args.execute,
        args.allow_unsafe, args.base_dir))


if __name__ == "__main__":
    sys.exit(main())
