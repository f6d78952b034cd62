"""``learned``: the size-aware learned policy. Until its model is trained it behaves exactly like S3-FIFO."""
from __future__ import annotations

from pipeline_opt.cache.policies.s3fifo import S3FIFO


class Learned(S3FIFO):
    name = "learned"
