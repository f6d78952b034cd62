"""What every showcase of the demo reads and where it writes."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional


@dataclass(frozen=True)
class DemoInputs:
    lakehouse: Path  # the generated TPC-H lakehouse (read-only for showcases)
    out: Path  # this showcase's own output folder
    demo_out: Path  # the folder every showcase writes under (the report looks at the others' tables there)
    s3: Optional[str]  # an s3://bucket/prefix the storage showcase may write to, with AWS_* settings
    results: Path  # benchmark results the report shows
