"""Demo of the cache part: replay the shared CloudPhysics trace (a prefix, for speed) through LRU, S3-FIFO and
``learned`` at one cache size and report their miss ratios. The lakehouse is not needed for this part's demo."""
from __future__ import annotations

from pathlib import Path

TRACE_NAME = "cloudPhysicsIO.oracleGeneral.bin"


def trace_path() -> Path:
    """The shared trace, next to the repository: ``../shared/traces`` from the repository root."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "traces" / TRACE_NAME


def run(lakehouse: Path, out: Path, requests: int = 60_000, size_fraction: float = 0.05) -> dict:
    from pipeline_opt.cache.simulate import simulate
    from pipeline_opt.cache.trace import read_trace

    path = trace_path()
    if not path.is_file():
        return {"skipped": f"trace {TRACE_NAME} not found at ../shared/traces"}
    trace = read_trace(path).head(requests)
    report = simulate(trace, ["lru", "s3fifo", "learned"], [size_fraction])
    facts = {"trace": TRACE_NAME, "requests": len(trace), "cache_fraction_of_working_set": size_fraction}
    for r in report.results:
        facts[f"{r.policy}_byte_miss_ratio"] = round(r.byte_miss_ratio, 4)
        facts[f"{r.policy}_us_per_request"] = round(r.us_per_request, 1)
    facts["offline_bound_byte_miss_ratio"] = round(float(report.bound[0].byte_miss_ratio), 4)
    return facts
