"""The error boundary of every entry point: an expected failure becomes one line on stderr and a documented exit code.

Invariants: a user error, a storage or permission refusal, a file that is not UTF-8 text, a Spark analysis error and
an interrupt never print a stack trace; anything else is a bug and keeps its traceback (exit 1). ``--debug`` (or
``PIPELINE_OPT_DEBUG=1``) lets every exception through with its traceback.

Exit codes (the README's table is this one):

====  ====================================================================
0     success
1     a bug: an unexpected exception, printed with its traceback
2     bad input: a path, table name, flag or config value (``PipelineOptError``), a Spark analysis error
3     a rewrite failed verification and was undone
4     storage or the operating system refused (permission, missing file, disk full)
130   interrupted (Ctrl-C)
141   the reader of stdout went away (``| head``)
====  ====================================================================
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from contextlib import contextmanager
from typing import Callable, NoReturn

from pipeline_opt.errors import PipelineOptError, java_causes, root_cause

BAD_INPUT = 2
STORAGE = 4
INTERRUPTED = 130
BROKEN_PIPE = 141

# Spark's analysis errors are bad input (a column or table that does not exist); matched by name so that the
# boundary imports no Spark, and covers both the classic and the Spark Connect classes.
# Java exceptions under a failed Spark job that mean storage refused, not that our code is wrong.
JAVA_STORAGE_ERRORS = {"java.io.FileNotFoundException", "java.nio.file.AccessDeniedException",
                       "java.nio.file.NoSuchFileException", "org.apache.hadoop.fs.PathNotFoundException"}
SPARK_INPUT_ERRORS = {"AnalysisException", "ParseException", "IllegalArgumentException"}


class OneLineParser(argparse.ArgumentParser):
    """argparse's refusals as one line (its usage block goes to ``--help``), exit 2 like every bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def debugging(argv: list[str]) -> bool:
    """True when the user asked for tracebacks; removes ``--debug`` from ``argv``."""
    if "--debug" in argv:
        argv.remove("--debug")
        return True
    return os.environ.get("PIPELINE_OPT_DEBUG", "") not in ("", "0")


def guarded(prog: str, call: Callable[[], int], debug: bool = False) -> int:
    """Run ``call`` and return its exit code; an expected failure prints ``prog: error: …`` and returns its code.
    A warning is one line, ``prog: warning: …`` (with ``--debug``, Python's own form naming the source line)."""
    try:
        with warnings.catch_warnings(), _debug_env(debug):
            if not debug:
                warnings.showwarning = _one_line_warning(prog)
            return call()
    except KeyboardInterrupt:
        _quiet_spark_shutdown()
        print(f"{prog}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE
    except Exception as e:  # noqa: BLE001 - the boundary sorts expected from unexpected, then re-raises the rest
        if debug:
            raise
        known = explain(e)
        if known is None:
            raise
        message, code = known
        print(f"{prog}: error: {message}", file=sys.stderr)
        return code


@contextmanager
def _debug_env(debug: bool):
    """``--debug`` for what the call starts (the JVM log level), for this call only: the CLI also runs in process."""
    before = os.environ.get("PIPELINE_OPT_DEBUG")
    if debug:
        os.environ["PIPELINE_OPT_DEBUG"] = "1"
    try:
        yield
    finally:
        if debug and before is None:
            os.environ.pop("PIPELINE_OPT_DEBUG", None)
        elif before is not None:
            os.environ["PIPELINE_OPT_DEBUG"] = before


def _one_line_warning(prog: str):
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"{prog}: warning: {str(message).strip().splitlines()[0] if str(message).strip() else category.__name__}",
              file=file or sys.stderr)
    return show


def explain(e: BaseException) -> tuple[str, int] | None:
    """One line and an exit code for an expected failure, or None for a bug."""
    if isinstance(e, PipelineOptError):
        return str(e), e.exit_code
    if isinstance(e, UnicodeDecodeError):
        return (f"input is not UTF-8 text ({e.reason} at byte {e.start}: {e.object[e.start:e.start + 4]!r}); "
                "save the file as UTF-8", BAD_INPUT)
    if isinstance(e, OSError):
        return _os_line(e), STORAGE
    if type(e).__name__ in SPARK_INPUT_ERRORS and type(e).__module__.startswith("pyspark"):
        return f"Spark: {_first_line(e)}", BAD_INPUT
    storage = [name for name, _ in java_causes(e) if name in JAVA_STORAGE_ERRORS]
    if storage:  # a Spark job that storage failed (a data file gone, access refused): not a bug of ours
        hint = "; `pipeline-opt health --check-files` lists every file the log names that storage lacks" \
            if "FileNotFound" in storage[-1] else ""
        return f"Spark could not read the table's files: {root_cause(e)}{hint}", STORAGE
    return None


def _os_line(e: OSError) -> str:
    if e.strerror is None:  # raised with a message only (pyarrow, fsspec, object-store clients)
        return _first_line(e)
    where = f": {e.filename}" if e.filename is not None else ""
    also = f" -> {e.filename2}" if getattr(e, "filename2", None) is not None else ""
    return f"{e.strerror or type(e).__name__}{where}{also}"


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _quiet_spark_shutdown() -> None:
    """An interrupt inside a py4j call makes py4j's threads log tracebacks while the JVM goes; silence them."""
    for name in ("py4j", "py4j.java_gateway", "py4j.clientserver"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
