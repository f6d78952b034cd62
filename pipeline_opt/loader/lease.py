"""The loader's side of reader leases: best effort, because reading must not need write access to the table.

Invariant: a lease that cannot be written (read-only credentials, a read-only folder) is reported once as a warning
and the loader reads on unprotected, as any other reader would; it never fails the read.
"""
from __future__ import annotations

import warnings
from typing import Mapping, Optional

from pipeline_opt.delta.leases import DEFAULT_TTL_S, LeaseHolder


class ReaderLease:
    def __init__(self, uri: str, version: int, storage_options: Optional[Mapping[str, str]] = None,
                 ttl_s: float = DEFAULT_TTL_S):
        self._holder: Optional[LeaseHolder] = None
        try:
            self._holder = LeaseHolder(uri, version, storage_options, ttl_s)
            self._holder.renew()
        except OSError as e:
            self._give_up(uri, e)

    def renew(self) -> None:
        if self._holder is not None:
            try:
                self._holder.renew()
            except OSError as e:
                self._give_up(self._holder.uri, e)

    def release(self) -> None:
        if self._holder is not None:
            self._holder.release()

    def _give_up(self, uri: str, e: OSError) -> None:
        warnings.warn(f"{uri}: cannot write a reader lease ({e}); our VACUUM will not know this reader holds its "
                      "version", stacklevel=3)
        self._holder = None
