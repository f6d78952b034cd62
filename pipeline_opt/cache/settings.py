"""Settings of the cache part (``conf/cache.yml``).

Invariant: ``budget`` is the byte budget ``cache plan`` holds the kept tables to when no ``--budget`` is given;
the policy names are checked against the policy registry when a plan is made.
"""
from __future__ import annotations

from dataclasses import dataclass

from pipeline_opt.units import ByteSize


@dataclass
class CacheConfig:
    policy: str = "learned"
    fallback: str = "s3fifo"
    budget: ByteSize = ByteSize(2 * 2**30)
    spark_table_cache: bool = True
    disk_cache: bool = True

    def validate(self) -> None:
        if self.budget <= 0:
            raise ValueError(f"budget: {self.budget!r} must be positive")
        if self.fallback != "s3fifo":
            raise ValueError(f"fallback: {self.fallback!r} is not supported; allowed: s3fifo "
                             "(what the learned policy runs until its model is trained)")
