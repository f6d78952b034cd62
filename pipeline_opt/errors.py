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
