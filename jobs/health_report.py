"""spark-submit job: file-size health of the Delta tables in conf/tables.yml, one JSON line per table.

    spark-submit --packages "$DELTA" --py-files dist/pipeline_opt.zip jobs/health_report.py --config conf/tables.yml
"""
import sys

from pipeline_opt.tables.maintenance_jobs import job_parser


def parse_args(argv=None):
    p = job_parser("health_report", __doc__)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from pipeline_opt.spark import get_spark
    from pipeline_opt.tables.maintenance_jobs import configured_tables, health_report, run_job

    def produce():
        config, tables = configured_tables(args.config, args.table, args.base_dir)
        return health_report(get_spark("pipeline_opt-health_report"), config, tables)

    return run_job("health_report", produce)


if __name__ == "__main__":
    sys.exit(main())
