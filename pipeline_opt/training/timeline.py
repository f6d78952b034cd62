"""Live bytes over one traced step, at any micro-batch, for more identical blocks than were traced, and per rank
under FSDP2.

Invariants: two traces at different micro-batches that made the same events in the same order give every
allocation's size as ``a + b × micro_batch`` (the batch dimension scales a tensor or it does not), so one pair of
traces answers every micro-batch exactly. Extending ``k`` traced blocks to ``n`` identical ones is exact in closed
form: inserting a block adds its saved activations ``S`` wherever that block's forward is done and its backward is
not, and its gradients ``G`` once its backward is done; at every moment of the traced step the inserted blocks can
sit on either side, so the peak over ``n`` blocks is ``max_t live(t) + (n - k) / period × w(t)`` with ``w`` equal
to 0 before the blocks, ``S`` during forward, ``max(S, G)`` during the blocks' backward and ``G`` after it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from pipeline_opt.training.trace import ALLOC, Trace


@dataclass(frozen=True)
class Shards:
    """FSDP2 per-rank accounting: ``ranks`` shards; ``forward_prefetch`` units gathered ahead in forward (CUDA
    streams run the next all-gather early; on CPU it runs when the unit starts); ``keep`` the share of a unit's
    gradients left on the device after its reduce-scatter (1/ranks; 0 when offloaded or added into held ones)."""

    ranks: int = 1
    forward_prefetch: int = 0
    keep: float = 1.0


class Timeline:
    """Per-event byte deltas of one step as linear functions of the micro-batch."""

    def __init__(self, a: Trace, micro_a: int, b: Optional[Trace] = None, micro_b: Optional[int] = None):
        self.trace, self.micro_a = a, micro_a
        kinds = np.array([k for k, _, _ in a.events], dtype=np.int64)
        size_a = self._sizes(a)
        self.linear = b is not None and _aligned(a, b)
        if self.linear:
            assert b is not None and micro_b is not None
            size_b = self._sizes(b)
            self.slope = (size_b - size_a) / float(micro_b - micro_a)
        else:
            self.slope = np.zeros(len(size_a))
        self.base = size_a - self.slope * micro_a
        self.sign = kinds
        ids = [i for _, i, _ in a.events]
        self.is_grad = np.array([i in a.grads for i in ids], dtype=bool)
        self.grad_block = np.array([a.grads.get(i, -2) for i in ids], dtype=np.int64)

    @staticmethod
    def _sizes(t: Trace) -> np.ndarray:
        sizes = t.sizes()
        return np.array([sizes[i] for _, i, _ in t.events], dtype=np.float64)

    def deltas(self, micro: int, grads: bool = True) -> np.ndarray:
        d = self.sign * np.rint(self.base + self.slope * micro)
        return d if grads else np.where(self.is_grad, 0.0, d)

    def at(self, name: str) -> Optional[int]:
        return self.trace.markers.get(name)

    def blocks(self) -> int:
        return sum(1 for k in self.trace.markers if k.startswith("fwd_end:"))

    def live(self, micro: int, grads: bool = True, extra: Optional[np.ndarray] = None) -> np.ndarray:
        """Dynamic bytes held after each event (index 0: before the first)."""
        d = self.deltas(micro, grads)
        if extra is None:
            return np.concatenate([[0.0], np.cumsum(d)])
        return extra[0] + np.concatenate([[0.0], np.cumsum(d + extra[1:])])

    def grad_bytes(self, micro: int, block: Optional[int] = None) -> float:
        sel = self.is_grad & (self.sign == ALLOC)
        if block is not None:
            sel &= self.grad_block == block
        return float(np.rint(self.base + self.slope * micro)[sel].sum())

    def regions(self) -> np.ndarray:
        """Per position: 0 before the blocks, 1 forward and the head, 2 the blocks' backward, 3 after it."""
        n, k = len(self.sign) + 1, self.blocks()
        reg = np.zeros(n, dtype=np.int64)
        if not k:
            return reg
        fwd, bwd = self.at("fwd_start:0"), self.at(f"bwd_start:{k - 1}")
        end = self.at("bwd_end:0") or self.at("grad_last:0") or n - 1
        reg[fwd or 0:] = 1
        if bwd is not None:
            reg[bwd:] = 2
        reg[end:] = 3
        return reg

    def period_growth(self, micro: int, period: int) -> float:
        """Saved bytes one period of blocks adds in forward (``S``), from the last traced periods."""
        k = self.blocks()
        live = self.live(micro)
        last, before = self.at(f"fwd_end:{k - 1}"), self.at(f"fwd_end:{k - 1 - period}")
        if last is None or before is None:
            return 0.0
        return float(live[last] - live[before])


def _aligned(a: Trace, b: Trace) -> bool:
    return (len(a.events) == len(b.events) and a.markers == b.markers
            and all(x[0] == y[0] and x[1] == y[1] for x, y in zip(a.events, b.events)))


def extension_weights(tl: Timeline, s: float, g: float) -> np.ndarray:
    """``w(t)`` of the module docstring for per-period saved bytes ``s`` and gradient bytes ``g``."""
    reg = tl.regions()
    return np.choose(reg, [0.0, s, max(s, g), g])


def fsdp_extra(tl: Timeline, micro: int, shards: Shards, unit_bytes: list[float], root_bytes: float) -> np.ndarray:
    """Per-position deltas that turn one device's step into one rank's under FSDP2: each block's parameters
    gathered (a flat buffer, then the unsharded tensors) from its forward start to end and again for its backward
    (the next unit prefetched one block early), the root's gathered for the whole step, and each unit's gradients
    reduce-scattered to a ``keep`` share when its last one has accumulated."""
    n = len(tl.sign) + 1
    extra = np.zeros(n + 1)
    k, keep = tl.blocks(), shards.keep

    def hold(start: Optional[int], stop: Optional[int], nbytes: float) -> None:
        if start is None:
            return
        extra[start] += nbytes
        extra[(stop if stop is not None else n - 1) + 1] -= nbytes

    hold(0, tl.at("backward_end"), root_bytes)
    end = tl.at("backward_end")
    if end is not None:
        extra[end + 1] -= tl.grad_bytes(micro, -1) * (1 - keep)
    for j in range(k):
        ahead = max(0, j - shards.forward_prefetch)
        hold(tl.at(f"fwd_start:{ahead}"), tl.at(f"fwd_end:{j}"), unit_bytes[j])
        start = tl.at(f"bwd_start:{min(j + 1, k - 1)}") if j < k - 1 else tl.at(f"bwd_start:{j}")
        stop = tl.at(f"bwd_end:{j}") or tl.at(f"grad_last:{j}")
        hold(start, stop, unit_bytes[j])
        at = tl.at(f"grad_last:{j}")
        if at is not None:
            extra[at + 1] -= tl.grad_bytes(micro, j) * (1 - keep)
            hold(at, at, unit_bytes[j])  # the flat reduce-scatter input while the gradients are copied in
    return extra[:n]
