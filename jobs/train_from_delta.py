"""Train a model on a Delta table with a memory plan (thin entry point; the logic is pipeline_opt.training.job).

    python jobs/train_from_delta.py --config conf/training.yml [--table PATH] [--steps N]

Prints the result (plan, losses, steps/s, step-downs, checkpoint) as JSON.
"""
from __future__ import annotations

import sys

from pipeline_opt.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", "--json", *sys.argv[1:]]))
