"""How far the issue's cache goals are reachable at all: references that know more than any online policy.

Run: .venv/bin/python benchmarks/cache_ceiling.py [--cache-json PATH] [--out PATH]   (after benchmarks/cache.py)
     → benchmarks/results/cache_ceiling.json

The goals (medians over the 16 trace × size points of benchmarks/cache.py) are evaluated, in place of ``learned``, for:
- ``best_policy``: at every point, whichever of the 12 evaluated policies missed fewest bytes there (a hindsight
  choice no single policy makes), taken from results/cache.json; miss ratios are deterministic, so reading them back
  is exact;
- ``perfect_lfu``: LFU that remembers the count of every key ever seen, in unbounded memory it is not charged for,
  and admits a newcomer only when it was requested more often than every object it would evict;
- ``a0``: on the two Zipf traces, whose keys are popularity ranks, the static cache of the most popular objects by
  true probability (the optimum for independent requests, which no online policy knows);
- ``hindsight_mix``: at every point the best of the three above.
LRU, ARC and S3-FIFO are replayed here again, side by side with the references.
"""
from __future__ import annotations

import argparse
import heapq
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cache import CLOUDPHYSICS, SIZES, goals, scan_trace, shifting_trace, zipf_trace  # noqa: E402

from pipeline_opt.cache.simulate import simulate  # noqa: E402
from pipeline_opt.cache.trace import Trace, read_trace  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
POPULAR_KEYS = {"zipf": 20_000, "zipf+scans": 10_000}  # keys below this are the ranked, repeating objects


def perfect_lfu(trace: Trace, capacity: int) -> float:
    counts: dict = {}
    resident: dict = {}  # key -> (count when last queued, size)
    heap: list = []
    used = missed = 0
    for key, size in zip(trace.keys.tolist(), trace.sizes.tolist()):
        c = counts[key] = counts.get(key, 0) + 1
        if key in resident:
            resident[key] = (c, size)
            heapq.heappush(heap, (c, key))
            continue
        missed += size
        if size > capacity:
            continue
        victims, freed = [], 0  # heap order: least requested first
        while used - freed + size > capacity:
            vc, vk = heapq.heappop(heap)
            if resident.get(vk, (None,))[0] == vc:  # else a stale heap entry
                victims.append((vc, vk))
                freed += resident[vk][1]
                if vc >= c:
                    break
        if victims and victims[-1][0] >= c:  # not more popular than everything it would displace: refused
            for item in victims:
                heapq.heappush(heap, item)
            continue
        for _, vk in victims:
            del resident[vk]
        used += size - freed
        resident[key] = (c, size)
        heapq.heappush(heap, (c, key))
    return missed / int(trace.sizes.sum())


def a0(trace: Trace, capacity: int) -> float:
    popular = POPULAR_KEYS[trace.name]
    keys, first, inverse = np.unique(trace.keys, return_index=True, return_inverse=True)
    sizes = trace.sizes[first]
    ranked = np.flatnonzero(keys < popular)  # ascending key = descending true popularity
    chosen = np.zeros(len(keys), bool)
    chosen[ranked[np.cumsum(sizes[ranked]) <= capacity]] = True
    hit = chosen[inverse]
    hit[first] = False  # the first request of every object misses
    return 1 - int(trace.sizes[hit].sum()) / int(trace.sizes.sum())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache-json", default=str(RESULTS / "cache.json"), help="results of benchmarks/cache.py")
    ap.add_argument("--out", default=str(RESULTS / "cache_ceiling.json"))
    args = ap.parse_args()
    stored = json.loads(Path(args.cache_json).read_text())
    bounds = {(b["trace"], b["size_fraction"]): b["byte_miss_ratio"] for b in stored["bound"]}
    best = {}
    for r in stored["results"]:
        if r["policy"] == "planned":  # without plans it is S3-FIFO itself; the reference stays "best of the 12"
            continue
        k = (r["trace"], r["size_fraction"])
        best[k] = min(best.get(k, 1.0), r["byte_miss_ratio"])
    traces = [read_trace(CLOUDPHYSICS), zipf_trace(), scan_trace(), shifting_trace()]
    rows = []
    for t in traces:
        report = simulate(t, ["lru", "arc", "s3fifo"], SIZES, bound=False)
        rows += [dict(trace=t.name, policy=r.policy, size_fraction=r.size_fraction,
                      byte_miss_ratio=r.byte_miss_ratio) for r in report.results]
        for r in report.results:
            if r.policy != "lru":
                continue
            point = dict(trace=t.name, size_fraction=r.size_fraction)
            refs = {"best_policy": best[(t.name, r.size_fraction)], "perfect_lfu": perfect_lfu(t, r.cache_bytes)}
            if t.name in POPULAR_KEYS:
                refs["a0"] = a0(t, r.cache_bytes)
            refs["hindsight_mix"] = min(refs.values())
            rows += [dict(point, policy=name, byte_miss_ratio=v) for name, v in refs.items()]
        print(t.name, "done", flush=True)
    result = {
        "machine": "2-core, 24 GiB Linux VM, no GPU",
        "results": rows,
        "goals_if_learned_were": {p: goals(rows, bounds, p) for p in ("best_policy", "perfect_lfu", "hindsight_mix")},
        "note": "a0 exists only on the two Zipf traces; hindsight_mix is the best of all references at each point",
    }
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result["goals_if_learned_were"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
