"""Named exceptions for user errors.

Invariant: every error a user can cause by a path, a flag or a config value is a ``PipelineOptError`` whose message
names the offending value; the CLI prints it as one line and exits non-zero, never with a stack trace.
"""


class PipelineOptError(Exception):
    """Base of every error caused by user input; the CLI turns it into one clear line."""

    exit_code = 2


class ConfigError(PipelineOptError):
    """A config file is malformed, has an unknown key or a bad value."""


class BadValueError(ConfigError, ValueError):
    """A size or number outside its domain (NaN, infinite, negative, beyond its bound, not a number).

    Also a ``ValueError``, so config loading and flag parsing, which add the key or flag to ``ValueError``s,
    name where the value came from."""


class TableNotFoundError(PipelineOptError):
    """The path does not exist."""


class NotADeltaTableError(PipelineOptError):
    """The path exists but holds no Delta log."""


class DeltaLogError(PipelineOptError):
    """A table version that does not exist, or a log, checkpoint or deletion vector that is not valid Delta."""


class MissingExtraError(PipelineOptError):
    """An optional dependency is not installed; the message says which extra to install."""


def require(module: str, extra: str):
    """Import an optional heavy module, or fail with the pip command that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(
            f"{module} is not installed: pip install 'pipeline_opt[{extra}]' ({e})"
        ) from None


def java_causes(error: BaseException) -> list[tuple[str, str]]:
    """(Java class, first line of its message) for the exception a failed Spark call carries and each of its causes,
    outermost first; empty for an error that carries none (Spark Connect's errors, Python's own)."""
    throwable = getattr(error, "java_exception", None) or getattr(error, "_origin", None)  # py4j's, pyspark's
    causes: list[tuple[str, str]] = []
    try:
        while throwable is not None and len(causes) < 20:
            message = str(throwable.getMessage() or "").strip()
            causes.append((str(throwable.getClass().getName()), message.splitlines()[0] if message else ""))
            throwable = throwable.getCause()
    except Exception:  # noqa: BLE001 - a JVM that went away leaves what was read so far
        pass
    return causes


def root_cause(error: BaseException) -> str:
    """The innermost cause's message of a failed Spark call, one line; else the error's own first line."""
    said = [message for _, message in java_causes(error) if message]
    text = said[-1] if said else (str(error).strip().splitlines() or [type(error).__name__])[0]
    return text[:300]
