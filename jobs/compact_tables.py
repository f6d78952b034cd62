"""spark-submit job: compact the tables of conf/tables.yml that the schedule ranks as worth it (a healthy table
costs one log read), every commit verified; one JSON line per table.

    spark-submit --packages "$DELTA" --py-files /tmp/pipeline_opt.zip jobs/compact_tables.py --config conf/tables.yml

(`zip -qr /tmp/pipeline_opt.zip pipeline_opt` builds the zip.) The arguments are those of
`pipeline-opt compact` (`pipeline-opt compact --help`); the result prints as JSON lines.
"""
import sys

from pipeline_opt.app.submit import submit

if __name__ == "__main__":
    sys.exit(submit("compact", sys.argv[1:]))
