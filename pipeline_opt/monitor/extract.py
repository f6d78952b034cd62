"""What each plot needs, found by key names anywhere in a benchmark's JSON (see ``results.py``).

Invariant: every function returns an empty list for a shape it does not recognise; none raises on odd input.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pipeline_opt.monitor.results import first_key, label_of, number, path_text, walk


def _known_number(value: Any) -> float:
    """``number(value)`` for a value already found to be a finite number (``first_key`` keys, filtered values)."""
    n = number(value)
    assert n is not None, f"not a finite number: {value!r}"
    return n


@dataclass
class CacheCurves:
    trace: str
    policies: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # policy → (size, miss ratio)
    bound: list[tuple[float, float]] = field(default_factory=list)
    metric: str = "byte_miss_ratio"


def cache_curves(data: Any) -> list[CacheCurves]:
    """Miss-ratio curves per trace: any dict holding ``results`` records with a policy and a miss ratio.

    Records may name their own ``trace`` (one flat list for many traces) or inherit the enclosing dict's.
    """
    out: dict[str, CacheCurves] = {}
    for path, node in walk(data):
        if not isinstance(node, dict) or not isinstance(node.get("results"), list):
            continue
        default = str(node.get("trace") or path_text(path) or "trace")
        for rec in node["results"]:
            if not isinstance(rec, dict) or "policy" not in rec:
                continue
            x, y = first_key(rec, r"size_fraction|fraction", r"cache_bytes|size"), first_key(
                rec, r"^byte_miss_ratio$", r"miss_ratio")
            if x and y:
                curves = out.setdefault(str(rec.get("trace") or default), CacheCurves(str(rec.get("trace") or default)))
                curves.metric = y
                point = (_known_number(rec[x]), _known_number(rec[y]))
                curves.policies.setdefault(str(rec["policy"]), []).append(point)
        for rec in node.get("bound") or []:
            if isinstance(rec, dict) and str(rec.get("trace") or default) in out:
                x, y = first_key(rec, r"size_fraction|fraction", r"size"), first_key(rec, r"byte_miss|miss")
                if x and y:
                    out[str(rec.get("trace") or default)].bound.append((_known_number(rec[x]), _known_number(rec[y])))
    for curves in out.values():
        curves.policies = {p: sorted(v) for p, v in curves.policies.items()}
        curves.bound.sort()
    return list(out.values())


def training_points(data: Any) -> tuple[list[tuple[str, float, float]], tuple[str, str]]:
    """(label, memory, speed) per training plan: ratios to fp32 where the JSON gives them (``memory_x``,
    ``speed_x``), else absolute peak memory and tokens/s. Predicted figures are never taken for measured ones."""
    for mem_pats, speed_pats, axes in (
        ((r"^memory_x$", r"^(peak_)?mem(ory)?_(ratio|x)$", r"^peak.*_(ratio|x)$"),
         (r"^speed_x$", r"^(speed|tokens_per_s)_(ratio|x)$", r"^speedup$"), ("peak memory × fp32", "tokens/s × fp32")),
        ((r"^peak_gib$", r"^peak.*(bytes|gib|mb)$", r"^peak"), (r"^tokens_per_s$", r"tokens/s|throughput"),
         ("peak memory", "tokens/s")),
    ):
        points = []
        for path, node in walk(data):
            if isinstance(node, dict):
                m, s = first_key(node, *mem_pats), first_key(node, *speed_pats)
                if m and s:
                    points.append((label_of(node, path_text(path)), _known_number(node[m]), _known_number(node[s])))
        if points:
            return points, axes
    return [], ("", "")


def throughputs(data: Any) -> list[tuple[str, float]]:
    """(label, rows/s) per reader: a ``throughput`` mapping of case → summary (median, else best, else plain
    rows/s), else records with a throughput key, else plain ``…rows_per_s`` entries. Per-run lists are skipped."""
    cases = data.get("throughput") if isinstance(data, dict) else None
    if isinstance(cases, dict):
        found = [(str(name), number(first_value(v, "median_rows_per_s", "best_rows_per_s", "rows_per_s")))
                 for name, v in cases.items() if isinstance(v, dict)]
        if [v for _, v in found if v is not None]:
            return [(name, v) for name, v in found if v is not None]
    pattern = r"rows_per_s|rows/s|throughput|samples_per_s"
    out: list[tuple[str, float]] = []
    for path, node in walk(data):
        if not isinstance(node, dict) or "runs" in path:
            continue
        key = first_key(node, pattern)
        if key and any(isinstance(v, str) for v in node.values()):
            out.append((label_of(node, path_text(path)), _known_number(node[key])))
        elif key:
            out += [(path_text(path + (k,)), _known_number(v)) for k, v in node.items()
                    if re.search(pattern, str(k), re.I) and number(v) is not None]
    return out


def first_value(record: dict, *keys: str) -> Any:
    for key in keys:
        if number(record.get(key)) is not None:
            return record[key]
    return None


_TIMEISH = re.compile(r"(^|_)s$|_s_|sec|latency|time|(^|/)q\d|query|read", re.I)


def latency_pairs(data: Any) -> list[tuple[str, float, float]]:
    """(label, before, after) seconds: numeric ``…before…`` keys with a matching ``…after…`` key in the same dict,
    where the key or its path says it is a time (``_s``, seconds, latency, a query such as ``q1``)."""
    out = []
    for path, node in walk(data):
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            key = str(key)
            partner = key.replace("before", "after").replace("Before", "After")
            if "before" not in key.lower() or number(value) is None or number(node.get(partner)) is None:
                continue
            if not _TIMEISH.search(f"{path_text(path)}/{key}"):
                continue
            stem = re.sub(r"_?before_?", "_", key, flags=re.I).strip("_")
            stem = "" if stem in ("s", "sec", "seconds", "latency", "latency_s", "time", "time_s") else stem
            label = "/".join(p for p in (path_text(path), stem) if p) or "read"
            out.append((str(node.get("query") or node.get("name") or label), _known_number(value),
                        _known_number(node[partner])))
    return out


def size_lists(data: Any) -> list[tuple[str, list[float], list[float]]]:
    """(label, sizes before, sizes after): numeric lists whose key path names sizes and before/after."""
    found: dict[str, dict[str, list[float]]] = {}
    for path, node in walk(data):
        text = path_text(path).lower()
        if isinstance(node, list) and node and "size" in text and all(number(v) is not None for v in node):
            when = "before" if "before" in text else "after" if "after" in text else None
            if when:
                stem = re.sub(r"[_/]?(before|after)", "", text)
                found.setdefault(stem, {})[when] = [float(v) for v in node]
    return [(stem, v["before"], v["after"]) for stem, v in found.items() if "before" in v and "after" in v]


def loss_curves(data: Any) -> dict[str, list[float]]:
    """Plan label → its loss per step, from records holding a numeric ``losses`` list."""
    out: dict[str, list[float]] = {}
    for path, node in walk(data):
        if isinstance(node, dict) and isinstance(node.get("losses"), list) and node["losses"]:
            values = [number(v) for v in node["losses"]]
            if all(v is not None for v in values):
                out[label_of(node, path_text(path))] = [v for v in values if v is not None]
    return out


def window_counts(data: Any) -> list[tuple[str, dict[str, int]]]:
    """(label, {below, inside, above}) file counts against the size window, from health stats (``files_below``,
    ``files_inside``, ``files_above``) whose path says before or after; labels end in "before"/"after"."""
    out = []
    for path, node in walk(data):
        if isinstance(node, dict) and all(number(node.get(f"files_{k}")) is not None
                                          for k in ("below", "inside", "above")):
            text = path_text(path)
            if re.search(r"before|after", text, re.I):
                out.append((text, {k: int(node[f"files_{k}"]) for k in ("below", "inside", "above")}))
    return out


_BEFORE_NAMES = re.compile(r"tiny|before|baseline|raw|uncompacted", re.I)


def query_times(data: Any) -> dict[str, dict[str, float]]:
    """Variant → {query → seconds}: the first dict whose child dicts (at least two) hold numeric ``q1``, ``q6``…
    keys, e.g. ``{"tiny": {"q1": 4.2, …}, "ours": {"q1": 0.8, …}}``. The before-variant (tiny, before, baseline,
    raw) comes first."""
    for _, node in walk(data):
        if not isinstance(node, dict):
            continue
        found = {str(name): {k: _known_number(v) for k, v in child.items() if re.fullmatch(r"q\d+", str(k))
                             and number(v) is not None}
                 for name, child in node.items() if isinstance(child, dict)}
        found = {name: qs for name, qs in found.items() if qs}
        if len(found) >= 2:
            return dict(sorted(found.items(), key=lambda kv: not _BEFORE_NAMES.search(kv[0])))
    return {}


def variant_values(data: Any, key: str) -> list[tuple[str, float]]:
    """(variant, value) for child dicts holding a numeric ``key`` (e.g. ``write_amplification``, ``files``)."""
    for _, node in walk(data):
        if isinstance(node, dict):
            found = [(str(n), _known_number(c[key])) for n, c in node.items()
                     if isinstance(c, dict) and number(c.get(key)) is not None]
            if len(found) >= 2:
                return found
    return []
