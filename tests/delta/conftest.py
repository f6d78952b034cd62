"""The Delta tables Spark wrote for the loader tests serve the log reader's tests too."""
from tests.loader.conftest import tables  # noqa: F401  (a fixture)
