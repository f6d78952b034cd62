"""spark-submit job: compact the tables of conf/tables.yml that `schedule` ranks as worth it (healthy ones cost
one log read); one JSON line per table.

    spark-submit --packages "$DELTA" --py-files dist/pipeline_opt.zip jobs/compact_tables.py --config conf/tables.yml
"""
import sys

from pipeline_opt.tables.maintenance_jobs import job_parser


def parse_args(argv=None):
    p = job_parser("compact_tables", __doc__)
    p.add_argument("--access-log", help="reads per table, to rank by read frequency")
    p.add_argument("--all", dest="everything", action="store_true", help="compact every table, not only scheduled")
    p.add_argument("--dry-run", action="store_true", help="plan only")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from pipeline_opt.spark import get_spark
    from pipeline_opt.tables.maintenance_jobs import compact_tables, run_job

    return run_job("compact_tables", lambda: compact_tables(
        get_spark("pipeline_opt-compact_tables"), args.config, args.table, args.access_log, args.everything,
        args.dry_run, args.base_dir))


if __name__ == "__main__":
    sys.exit(main())
