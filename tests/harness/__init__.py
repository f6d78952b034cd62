"""Test and benchmark harnesses that never ship in the wheel: a local S3 server (moto), a Spark standalone cluster,
a driver process, and log-only Delta tables."""
