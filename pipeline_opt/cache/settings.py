"""Settings of the cache part (``conf/cache.yml``).

Invariants: ``budget`` is the byte budget ``cache plan`` holds the kept tables to when no ``--budget`` is given;
the policy names are checked against the policy registry on load; ``schedule`` is the known future of
``cache plan`` (tables scheduled jobs read, every ``every_hours``); ``pins`` and ``exclusions`` name tables (full
name, or its last component) that ``cache plan`` and the loader's file cache (``planned`` policy) always keep and
never cache.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from pipeline_opt.cache.forecast import ScheduledRead
from pipeline_opt.units import ByteSize


@dataclass
class CacheConfig:
    policy: str = "planned"
    fallback: str = "s3fifo"
    budget: ByteSize = ByteSize(2 * 2**30)
    horizon_hours: float = 24.0
    schedule: list[ScheduledRead] = field(default_factory=list)
    pins: list[str] = field(default_factory=list)
    exclusions: list[str] = field(default_factory=list)
    file_cache_policy: str = "planned"
    spark_table_cache: bool = True
    disk_cache: bool = True

    def validate(self) -> None:
        from pipeline_opt.cache.policies import names

        for key, name in (("policy", self.policy), ("file_cache_policy", self.file_cache_policy)):
            if name not in names():
                raise ValueError(f"{key}: {name!r} is not a cache policy; allowed: {', '.join(names())}")
        if self.budget <= 0:
            raise ValueError(f"budget: {self.budget!r} must be positive")
        if self.fallback != "s3fifo":
            raise ValueError(f"fallback: {self.fallback!r} is not supported; allowed: s3fifo "
                             "(what the learned and planned policies run without a model or a plan)")
        if not 0 < self.horizon_hours < math.inf:  # NaN fails too
            raise ValueError(f"horizon_hours: {self.horizon_hours!r} must be a positive finite number of hours")
        both = sorted(set(self.pins) & set(self.exclusions))
        if both:
            raise ValueError(f"pins and exclusions both name {both}")
