"""Memory accounting: what a training step holds, split into parameters, gradients, optimizer state, activations.

Invariants: ``static_bytes`` counts the storage actually held (quantized optimizer state by its inner tensors, a
storage shared by several views once); ``measure_step`` reports the peak of one step from the allocator — CUDA's
caching allocator (plus device memory from the driver, which also sees managed memory such as bitsandbytes' paged
state), or on CPU the allocation events torch's profiler records — so it measures, it does not predict.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional, TypeVar

import torch

from pipeline_opt.training import optimizers


def tensor_bytes(t: torch.Tensor, seen: Optional[set] = None) -> int:
    """Bytes of the storages behind ``t`` (tensor subclasses by their inner tensors, a DTensor by this rank's
    shard); ``seen`` dedupes storages."""
    if hasattr(t, "to_local") and hasattr(t, "device_mesh"):  # a DTensor: this rank's shard
        return tensor_bytes(t.to_local(), seen)
    if type(t) not in (torch.Tensor, torch.nn.Parameter) and hasattr(t, "__tensor_flatten__"):
        names, _ = t.__tensor_flatten__()
        return sum(tensor_bytes(getattr(t, n), seen) for n in names if torch.is_tensor(getattr(t, n)))
    storage = t.untyped_storage()
    key = storage._cdata  # the StorageImpl: shared by views, defined for fake tensors too
    if seen is not None:
        if key in seen:
            return 0
        seen.add(key)
    return storage.nbytes()


@dataclass
class StaticBytes:
    params: int
    grads: int
    optimizer_state: int

    @property
    def total(self) -> int:
        return self.params + self.grads + self.optimizer_state


def static_bytes(model: torch.nn.Module, optimizer=None, device_only: bool = True) -> StaticBytes:
    """Bytes held now by parameters, their gradients and the optimizer state (state in host memory skipped
    when ``device_only`` and the model is on an accelerator)."""
    seen: set = set()
    params = list(model.parameters())
    p = sum(tensor_bytes(x, seen) for x in params)
    g = sum(tensor_bytes(x.grad, seen) for x in params if x.grad is not None)
    dev = params[0].device if params else torch.device("cpu")
    o = 0
    for opt in optimizers.unwrap(optimizer) if optimizer is not None else []:
        for state in opt.state.values():
            for v in state.values():
                if torch.is_tensor(v) and v.dim() > 0 and (not device_only or v.device == dev):
                    o += tensor_bytes(v, seen)
    return StaticBytes(p, g, o)


class SavedActivations:
    """Counts the bytes autograd saves for backward inside the context (parameters excluded, storages once).

    With ``budget`` set, raising ``torch.OutOfMemoryError`` as soon as ``base + saved`` exceeds it: a budget guard
    that makes a step fail the way a too-small device does, on any device.
    """

    def __init__(self, model: Optional[torch.nn.Module] = None, base: int = 0, budget: Optional[int] = None):
        self._params = {x.untyped_storage()._cdata for x in model.parameters()} if model is not None else set()
        self._seen: set = set()
        self.base, self.budget, self.bytes = base, budget, 0

    def _pack(self, t: torch.Tensor):
        ptr = t.untyped_storage()._cdata if not hasattr(t, "__tensor_flatten__") else id(t)
        if ptr not in self._params and ptr not in self._seen:
            self._seen.add(ptr)
            self.bytes += tensor_bytes(t)
            if self.budget is not None and self.base + self.bytes > self.budget:
                raise torch.OutOfMemoryError(
                    f"memory budget {self.budget} B exceeded: {self.base} B held + {self.bytes} B of activations")
        return t

    def __enter__(self):
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        return self._hooks.__exit__(*exc)


@dataclass
class MemoryBreakdown:
    """One step's memory: what was held (static), what forward saved, and the measured peak."""

    params: int
    grads: int
    optimizer_state: int
    activations: Optional[int]  # None: not counted (a compiled forward runs without saved-tensor hooks)
    peak: int
    device_peak: Optional[int]
    method: str

    def as_gib(self) -> dict:
        return {k: (round(v / 2**30, 4) if isinstance(v, int) else v) for k, v in asdict(self).items()}


_T = TypeVar("_T")


def measure_step(step: Callable[[], _T], device: torch.device,
                 held_before: int = 0) -> tuple[_T, int, Optional[int], str]:
    """Run ``step`` once; returns (its result, peak bytes allocated, device bytes or None, method).

    On CPU the profiler sees allocations made during the step only, so the peak is ``held_before`` (what the
    caller knows was held at the start: parameters, gradients, optimizer state) plus the highest running total.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        out = step()
        torch.cuda.synchronize(device)
        return out, torch.cuda.max_memory_allocated(device), _device_used(device), "cuda caching allocator + driver"
    out, peak = _measure_cpu(step)
    return out, held_before + peak, None, "cpu profiler allocation events"


def _device_used(device: torch.device) -> Optional[int]:
    """Device memory in use as the driver sees it (includes CUDA managed memory and other processes)."""
    try:
        free, total = torch.cuda.mem_get_info(device)
        return total - free
    except RuntimeError:
        return None


def _measure_cpu(step):
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    # The profiler's Kineto backend prints profiler_start/stop lines and, without a GPU, a device-count error on
    # every use; level 6 is above its last (USDT) level. Read when the profiler starts; a user's setting wins.
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = step()
    deltas = []

    def walk(event):
        if event.tag == _EventType.Allocation:
            deltas.append((event.start_time_ns, event.extra_fields.alloc_size))
        for child in event.children:
            walk(child)

    for root in prof.profiler.kineto_results.experimental_event_tree():
        walk(root)
    running = peak = 0
    for _, size in sorted(deltas):
        running += size
        peak = max(peak, running)
    return out, peak


class MemoryRecorder:
    """Memory snapshots on request: CUDA's allocator history (for pytorch.org/memory_viz), else the breakdowns."""

    def __init__(self, device: torch.device, max_entries: int = 100_000):
        self.device = torch.device(device)
        self.breakdowns: list[dict] = []
        if self.device.type == "cuda":
            torch.cuda.memory._record_memory_history(max_entries=max_entries)

    def add(self, step: int, breakdown: MemoryBreakdown) -> None:
        self.breakdowns.append({"step": step, **asdict(breakdown)})

    def snapshot(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.device.type == "cuda":
            torch.cuda.memory._dump_snapshot(str(path))
        else:
            path.write_text(json.dumps({"device": "cpu", "steps": self.breakdowns}, indent=1))
        return path
