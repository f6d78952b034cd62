"""spark-submit job: VACUUM the tables of conf/tables.yml with their configured retention (a dry run unless
--execute); one JSON line per table with the files and bytes deleted or to delete.

    spark-submit --packages "$DELTA" --py-files /tmp/pipeline_opt.zip jobs/vacuum_tables.py --config conf/tables.yml

(`zip -qr /tmp/pipeline_opt.zip pipeline_opt` builds the zip.) The arguments are those of
`pipeline-opt vacuum` (`pipeline-opt vacuum --help`); the result prints as JSON lines.
"""
import sys

from pipeline_opt.app.submit import submit

if __name__ == "__main__":
    sys.exit(submit("vacuum", sys.argv[1:]))
