"""The demo's closing before/after summary: one line per part, from the facts the showcases returned.

Invariants: reads only the facts (never re-measures); a showcase that failed or returned no such fact shows as
"—", so the summary never invents a number; every figure names what it compares against.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from pipeline_opt.units import format_size

MISSING = "—"


def summary_lines(health: list[dict], showcases: Mapping[str, Mapping[str, Any]], seconds: Optional[float],
                  scale: Optional[float]) -> list[str]:
    head = "pipeline_opt demo" + (f", TPC-H scale {scale:g}" if scale else "") + (
        f", {seconds:.0f} s" if seconds is not None else "")
    return [head, "", *_tables(health, showcases.get("tables", {})), "",
            _queries(showcases.get("tables", {})), _loader(showcases.get("loader", {})),
            _training(showcases.get("training", {})), _cache(showcases.get("cache", {})),
            _report(showcases.get("monitor", {}))]


def _tables(health: list[dict], facts: Mapping[str, Any]) -> list[str]:
    lines = ["tables        files before → after     bytes in the 16 MB – 1 GB window   (compacted copies, "
             "every commit verified)"]
    for h in health:
        after = facts.get(h["table"])
        if not isinstance(after, Mapping):
            continue  # only the compacted tables have an after
        files = f"{h['files']:>7,} → {after.get('files_after', 0):<7,}"
        inside = f"{h['share_inside']:>4.0%} → {after.get('share_inside_after', 0):.0%}"
        note = f"   {after['engine']}, {after.get('seconds', 0):.1f} s" if after.get("engine") else ""
        note += "" if after.get("verified") else "   NOT VERIFIED"
        if after.get("share_inside_after", 0) < 0.5 and after.get("share_settled_after", 0) >= 0.99:
            note += (f"   (each partition holds less than the 16 MB floor: one file per partition, "
                     f"{format_size(h['bytes'])} in all)")
        lines.append(f"  {h['table']:<11} {files}         {inside:<14}{note}".rstrip())
    return lines


def _queries(facts: Mapping[str, Any]) -> str:
    timed = facts.get("lineitem_queries_s")
    if not isinstance(timed, Mapping):
        return f"queries       {MISSING}"
    parts = [f"{q} {t['before']:.2f} s → {t['after']:.2f} s ({t['before'] / max(t['after'], 1e-9):.1f}×)"
             for q, t in timed.items()]
    return "queries       TPC-H on lineitem, Spark, warm: " + ";  ".join(parts)


def _loader(facts: Mapping[str, Any]) -> str:
    if "rows_per_s" not in facts:
        return f"loader        {MISSING}"
    return (f"loader        {facts['rows']:,} rows (deletion vectors applied; {facts['live_rows']:,} live) in one "
            f"shuffled epoch, 2 workers: {facts['rows_per_s']:,} rows/s")


def _training(facts: Mapping[str, Any]) -> str:
    if "plan" not in facts:
        return f"training      {MISSING}"
    return (f"training      plan {facts['plan']}: predicted peak {facts.get('predicted_peak_gib', 0) * 1024:.1f} MiB "
            f"under a {facts['budget_gib'] * 1024:.1f} MiB budget (fp32 + AdamW: "
            f"{facts.get('fp32_adamw_predicted_gib', 0) * 1024:.1f} MiB); loss {facts['loss_start']} → "
            f"{facts['loss_end']} in {facts['steps']} steps")


def _cache(facts: Mapping[str, Any]) -> str:
    real = facts.get("real_run")
    if not isinstance(real, Mapping) or "lru_bytes_fetched_per_epoch" not in real:
        return f"cache         {MISSING}"
    lru, planned = real["lru_bytes_fetched_per_epoch"][1:], real["planned_bytes_fetched_per_epoch"][1:]
    saved = sum(lru) - sum(planned)
    return (f"cache         planned file cache ({format_size(real['budget_bytes'])}) fetched "
            f"{format_size(abs(saved))} {'less' if saved >= 0 else 'MORE'} than LRU after the first epoch "
            f"({real['planned_over_lru_after_the_first_epoch']:.2f}× LRU's bytes)")


def _report(facts: Mapping[str, Any]) -> str:
    return f"report        {facts.get('report', MISSING)}"
