"""Object storage: one settings object for every engine, clear errors, and the single-writer rule on S3.

``ObjectStore`` maps endpoint/credentials to Spark ``s3a`` confs and delta-rs/pyarrow ``storage_options``;
``preflight`` fails fast with one clear error; ``single_writer`` enforces one Delta writer at a time on S3.
"""
from pipeline_opt.storage.preflight import (
                                            BucketNotFoundError,
                                            CredentialsError,
                                            EndpointUnreachableError,
                                            explain,
                                            preflight,
)
from pipeline_opt.storage.settings import ObjectStore, StorageError, bucket_and_key, for_engine, scheme_of
from pipeline_opt.storage.writer import ConcurrentWriterError, WriterLease, check_spark_write, single_writer

__all__ = ["ObjectStore", "StorageError", "EndpointUnreachableError", "CredentialsError", "BucketNotFoundError",
           "preflight", "explain", "bucket_and_key", "for_engine", "scheme_of", "ConcurrentWriterError", "WriterLease",
           "check_spark_write", "single_writer"]
