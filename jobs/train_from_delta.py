r"""spark-submit job: train a model on a Delta table with a memory plan (plan, losses, steps/s, step-downs,
checkpoint).

    spark-submit --packages "$DELTA" --py-files /tmp/pipeline_opt.zip jobs/train_from_delta.py \
        --config conf/training.yml

(`zip -qr /tmp/pipeline_opt.zip pipeline_opt` builds the zip.) The arguments are those of
`pipeline-opt train` (`pipeline-opt train --help`); the result prints as JSON lines.
"""
import sys

from pipeline_opt.app.submit import submit

if __name__ == "__main__":
    sys.exit(submit("train", sys.argv[1:]))
