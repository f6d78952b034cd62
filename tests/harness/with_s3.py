"""Run a command with a local S3 server: ``python -m tests.harness.with_s3 [--bucket lake] -- COMMAND …``.

The server (moto, on loopback, enforcing credentials) holds the bucket; the command gets its endpoint and keys as
the standard ``AWS_*`` variables, and the server stops when the command ends. ``make demo`` runs the demo this way so
its storage showcase has a store to write to.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.harness.moto_server import MotoServer


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.harness.with_s3", description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", default="lake")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --")
    with tempfile.TemporaryDirectory(prefix="s3-") as logs, MotoServer(Path(logs), buckets=(args.bucket,)) as store:
        return subprocess.run(command, env={**os.environ, **store.to_env()}).returncode


if __name__ == "__main__":
    sys.exit(main())
