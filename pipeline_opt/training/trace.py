"""One training step run on fake tensors, recorded as the allocations it makes and frees, in order.

Invariants: nothing real is allocated (the model and the batch are fake tensors: shapes and dtypes only); every
storage an operator creates is one ``alloc`` event with its bytes and one ``free`` event when the last reference
to it dies (storages shared by views count once); parameters, buffers and the batch exist before the step and are
not events. Markers record when each block's forward and backward starts and ends, so a timeline can be cut into
the regions that repeat with the blocks. Storages made while ``host()`` is active (activation offload copies)
live in host memory and are not device events.
"""
from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch.utils._python_dispatch import TorchDispatchMode

ALLOC, FREE = 1, -1
# operators that draw random numbers: recomputing them under a compiler memory budget changes the result
_RNG_OPS = ("native_dropout", "bernoulli", "rand", "randn", "randint", "normal", "uniform", "exponential",
            "multinomial", "randperm", "poisson", "rand_like", "randn_like", "randint_like")


@dataclass
class Trace:
    """Events ``(ALLOC|FREE, id, bytes)`` of one step; ``markers`` maps a name to the event count at that moment;
    ``grads`` the ids of gradient storages with the block (-1: outside the blocks) of their parameter."""

    events: list = field(default_factory=list)
    markers: dict = field(default_factory=dict)
    grads: dict = field(default_factory=dict)
    rng_ops: set = field(default_factory=set)
    flops: dict = field(default_factory=dict)  # marker name -> FLOPs counted so far (when counting)

    def mark(self, name: str) -> None:
        self.markers.setdefault(name, len(self.events))

    def sizes(self) -> dict:
        return {i: b for kind, i, b in self.events if kind == ALLOC}


class Recorder(TorchDispatchMode):
    """Records the storages operators create (on fake tensors) and when they are freed."""

    def __init__(self, trace: Trace, existing: list[torch.Tensor], device: str = "cpu"):
        super().__init__()
        self.trace, self.device = trace, device
        self._ids: dict[int, int] = {}  # StorageImpl address -> event id, for live storages
        self._host = False
        self.flops = 0  # counted as torch.utils.flop_counter counts them, without its module hooks
        self.closed = False  # after the step: frees then (zero_grad, cleanup) are not part of it
        for t in existing:
            self._ids[t.untyped_storage()._cdata] = -1  # held before the step: never an event

    @contextlib.contextmanager
    def cpu_generator_states(self):
        """The CPU generator states checkpointing keeps to replay random ops (5 KB each, made outside any
        operator) counted as the allocations they are when the device is the CPU."""
        original = torch.get_rng_state

        def recorded():
            state = original()
            self._register(state)
            return state

        if self.device == "cpu":
            torch.get_rng_state = recorded
        try:
            yield
        finally:
            torch.get_rng_state = original

    @contextlib.contextmanager
    def host(self):
        self._host, before = True, self._host
        try:
            yield
        finally:
            self._host = before

    def offload_hooks(self):
        """Saved-tensor hooks as ``save_on_cpu`` does it: a host copy when saved, a device copy when used."""
        def pack(t):
            with self.host():
                return t.detach().clone()

        def unpack(h):
            return h.clone()

        return torch.autograd.graph.saved_tensors_hooks(pack, unpack)

    def _register(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        key = storage._cdata
        if key in self._ids:
            return
        if self._host:
            self._ids[key] = -1
            weakref.finalize(storage, self._ids.pop, key, None)
            return
        ident = len(self._ids) + len(self.trace.events)  # unique while the trace runs
        self._ids[key] = ident
        self.trace.events.append((ALLOC, ident, storage.nbytes()))
        weakref.finalize(storage, self._free, key, ident)

    def _free(self, key: int, ident: int) -> None:
        self._ids.pop(key, None)
        if not self.closed:
            self.trace.events.append((FREE, ident, 0))

    def id_of(self, t: torch.Tensor) -> Optional[int]:
        ident = self._ids.get(t.untyped_storage()._cdata)
        return None if ident is None or ident < 0 else ident

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        from torch.utils.flop_counter import flop_registry

        from pipeline_opt.training.workspace import rule

        out = func(*args, **(kwargs or {}))
        counter = flop_registry.get(func._overloadpacket)
        if counter is not None:
            self.flops += counter(*args, **(kwargs or {}), out_val=out)
        name = func._overloadpacket.__name__.rstrip("_")  # in-place forms too: CPU dropout is bernoulli_
        if name in _RNG_OPS:
            self.trace.rng_ops.add(name)
        hidden = rule(self.device, func)
        workspace = hidden(args, out[0] if isinstance(out, (tuple, list)) else out) if hidden else 0
        if workspace and not self._host:  # a kernel's own buffer: held while the op runs, with its outputs
            ident = -len(self.trace.events) - 1
            self.trace.events.append((ALLOC, ident, workspace))
        for o in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(o, torch.Tensor):
                self._register(o)
        if workspace and not self._host:
            self.trace.events.append((FREE, ident, 0))
        return out


class BlockMarkers:
    """Forward and backward markers for each block: ``fwd_start:i``, ``fwd_end:i``, ``bwd_start:i`` (the gradient
    of its output arrived) and ``bwd_end:i`` (the gradient of its input is computed, or its last parameter's
    gradient accumulated when its input needs none)."""

    def __init__(self, trace: Trace, blocks: list[torch.nn.Module], flops: Optional[Callable[[], int]] = None):
        self.trace, self.handles, self.flops = trace, [], flops
        for i, block in enumerate(blocks):
            self.handles.append(block.register_forward_pre_hook(self._pre(i), with_kwargs=True))
            self.handles.append(block.register_forward_hook(self._post(i), with_kwargs=True))

    def _pre(self, i: int) -> Callable:
        def hook(module, args, kwargs):
            if not torch.is_grad_enabled() or f"fwd_end:{i}" in self.trace.markers:
                return  # a recompute in backward is not a forward
            self.trace.mark(f"fwd_start:{i}")
            if self.flops is not None:
                self.trace.flops[f"fwd_start:{i}"] = self.flops()
            first = next((a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)), None)
            if first is not None and first.requires_grad:
                first.register_hook(lambda g: self.trace.mark(f"bwd_end:{i}"))
        return hook

    def _post(self, i: int) -> Callable:
        def hook(module, args, kwargs, out):
            if not torch.is_grad_enabled() or f"fwd_end:{i}" in self.trace.markers:
                return
            self.trace.mark(f"fwd_end:{i}")
            if self.flops is not None:
                self.trace.flops[f"fwd_end:{i}"] = self.flops()
            first = out if isinstance(out, torch.Tensor) else next(
                (o for o in (out if isinstance(out, (tuple, list)) else ()) if isinstance(o, torch.Tensor)), None)
            if first is not None and first.requires_grad:
                first.register_hook(lambda g: self.trace.mark(f"bwd_start:{i}"))
        return hook

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def grad_hooks(trace: Trace, recorder: Recorder, params: list[tuple[torch.nn.Parameter, int]]) -> list:
    """Hooks that mark each parameter's gradient storage (with its block) as it is accumulated."""
    def hook_for(block: int):
        def hook(p):
            ident = recorder.id_of(p.grad)
            if ident is not None:
                trace.grads[ident] = block
            trace.mark(f"grad_first:{block}")
            trace.markers[f"grad_last:{block}"] = len(trace.events)
        return hook
    return [p.register_post_accumulate_grad_hook(hook_for(b)) for p, b in params if p.requires_grad]
