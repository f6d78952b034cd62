"""spark-submit job: file-size health of the Delta tables of conf/tables.yml, from their logs; one JSON line per
table.

    spark-submit --packages "$DELTA" --py-files /tmp/pipeline_opt.zip jobs/health_report.py --config conf/tables.yml

(`zip -qr /tmp/pipeline_opt.zip pipeline_opt` builds the zip.) The arguments are those of
`pipeline-opt health` (`pipeline-opt health --help`); the result prints as JSON lines.
"""
import sys

from pipeline_opt.app.submit import submit

if __name__ == "__main__":
    sys.exit(submit("health", sys.argv[1:]))
