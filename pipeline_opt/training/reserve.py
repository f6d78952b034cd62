"""Reserved memory of a training run on CUDA: steady-state steps replayed through the caching-allocator model.

Invariants: the replay is what the device sees — parameters allocated once in model order, then two steps; the
first step allocates the optimizer state at its optimizer step (so later steps find the segments that layout left),
every step frees its gradients after the update (``zero_grad(set_to_none=True)``) and whatever else it still held;
with accumulation the micro-steps after the first add their gradients into the held ones and free the new buffers
at once. Peaks are those of the last step after ``reset_peak_memory_stats`` — as the benchmark measures them —
while ``reserved`` keeps every segment earlier steps made.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline_opt.training.allocator import CachingAllocator
from pipeline_opt.training.timeline import Timeline
from pipeline_opt.training.trace import ALLOC

STEPS = 2  # the first allocates the optimizer state; the second is the steady state measured


@dataclass(frozen=True)
class Replayed:
    allocated: int   # peak allocated bytes of the last step (blocks, as max_memory_allocated counts them)
    reserved: int    # peak reserved bytes (segments)
    requested: int   # peak of the raw requested bytes of the last step (what the timeline counts)


def replay_steps(param_sizes: list[int], state_sizes: list[list[int]], tl: Timeline, micro: int,
                 step_transient: int, accumulation: int = 1) -> Replayed:
    """Replay ``STEPS`` steps (see the module docstring)."""
    alloc = CachingAllocator()
    for i, n in enumerate(param_sizes):
        alloc.malloc(("param", i), n)
    sizes = np.rint(tl.base + tl.slope * micro).astype(np.int64)
    events = [(k, ident, int(s)) for (k, ident, _), s in zip(tl.trace.events, sizes)]
    grads = set(tl.trace.grads)
    requested = peak_requested = sum(param_sizes)
    for step in range(STEPS):
        if step == STEPS - 1:
            alloc.reset_peaks()
            peak_requested = requested
        held: dict = {}
        for micro_step in range(accumulation):
            for kind, ident, nbytes in events:
                key = (step, micro_step, ident)
                if kind == ALLOC:
                    alloc.malloc(key, nbytes)
                    requested += nbytes
                    held[key] = nbytes
                    if micro_step and ident in grads:  # added into the held gradient, then freed
                        alloc.free(key)
                        requested -= held.pop(key)
                elif key in held:
                    alloc.free(key)
                    requested -= held.pop(key)
                peak_requested = max(peak_requested, requested)
        if step == 0:
            for i, states in enumerate(state_sizes):
                for j, n in enumerate(states):
                    alloc.malloc(("state", i, j), n)
                    requested += n
        alloc.malloc(("step", step), step_transient)
        peak_requested = max(peak_requested, requested + step_transient)
        alloc.free(("step", step))
        for key in list(held):
            alloc.free(key)
            requested -= held.pop(key)
    return Replayed(alloc.peak_allocated, alloc.peak_reserved, peak_requested)
