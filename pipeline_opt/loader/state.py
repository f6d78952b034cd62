"""Loader state for exact mid-epoch resume: small (window ranges, not rows) and tied to one table and plan.

Invariants: a state names the table (Delta table id + URI), the pinned version, the plan parameters that decide which
rows form each batch (batch size, ranks, seed, shuffle, window size, drop_last, filter) and the progress of the
epoch as windows fully read plus (window, batches read) for windows in flight. Because batch contents depend only on
those, a resumed loader — with any number of workers — yields exactly the batches not yet yielded. Its size grows
with the number of workers in flight and the number of finished window runs, never with rows.
"""
from __future__ import annotations

from typing import Iterable

from pipeline_opt.loader.errors import LoaderError

FORMAT = 1
PLAN_KEYS = ("batch_size", "world_size", "rank", "seed", "shuffle", "drop_last", "window_rows")


def plan_params(dataset) -> dict:
    params = {k: getattr(dataset, k) for k in PLAN_KEYS}
    params["filter"] = dataset.row_filter.describe()
    return params


def to_ranges(indices: Iterable[int]) -> list:
    """Sorted ints as [[first, last], ...] runs."""
    out: list = []
    for i in sorted(indices):
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def from_ranges(ranges) -> set:
    return {i for a, b in ranges for i in range(int(a), int(b) + 1)}


def make_state(dataset, epoch: int, progress: dict, batches_done: int) -> dict:
    """The state after ``batches_done`` batches of ``epoch``; ``progress`` maps window → batches read."""
    plan = dataset.plan(epoch)
    done = [w.index for w in plan.windows if progress.get(w.index, 0) >= w.batches]
    partial = [[w.index, progress[w.index]] for w in plan.windows if 0 < progress.get(w.index, 0) < w.batches]
    return {"format": FORMAT, "table_id": dataset.snapshot.table_id, "uri": dataset.snapshot.uri,
            "version": dataset.version, "plan": plan_params(dataset), "epoch": int(epoch),
            "batches_done": int(batches_done), "windows_done": to_ranges(done), "windows_partial": partial}


def check_state(dataset, state: dict) -> None:
    """Raise ``LoaderError`` unless ``state`` was saved by a loader over the same table and plan."""
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else state
        raise LoaderError(f"not a DeltaLoader state dict (format {found!r})")
    if state.get("table_id") != dataset.snapshot.table_id:
        raise LoaderError(f"state dict is for table {state.get('uri')} (id {state.get('table_id')}), "
                          f"not {dataset.snapshot.uri} (id {dataset.snapshot.table_id})")
    mine = plan_params(dataset)
    theirs = state.get("plan", {})
    diff = {k: (theirs.get(k), mine[k]) for k in mine if theirs.get(k) != mine[k]}
    if diff:
        raise LoaderError(f"state dict was saved with other loader settings (saved, now): {diff}")


def resume_progress(state: dict) -> dict:
    """window → batches already read, from a state dict (finished windows map to a huge count)."""
    progress = {w: 1 << 62 for w in from_ranges(state["windows_done"])}
    progress.update({int(w): int(n) for w, n in state["windows_partial"]})
    return progress
