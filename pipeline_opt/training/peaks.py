"""What one training run reports about itself: peak memory allocated and reserved, tokens per second and the
out-of-memory step-downs it took.

Invariants: on CUDA the peaks are the caching allocator's (``max_memory_allocated`` / ``max_memory_reserved``), read
after every step — a measured step resets those counters when it starts, so reading after each step loses no
step's peak; on CPU the peak allocated is the CPU profiler's peak over the measured steps (``Trainer.memory``) and
the peak reserved equals it, because PyTorch's CPU allocator keeps no pool of freed blocks to reserve; a CPU run
that measured no step reports no peak (None), never 0. A token is a gpt's token id (the ``tokens`` input's
elements); any other model counts one token per row. Every step-down is an out-of-memory error the run survived.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class RunPeaks:
    device: torch.device
    tokens: int = 0
    allocated: int = 0
    reserved: int = 0

    def __post_init__(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def after_step(self, batch: dict) -> None:
        tokens = batch.get("tokens")
        self.tokens += int(tokens.numel()) if isinstance(tokens, torch.Tensor) else _rows(batch)
        if self.device.type == "cuda":
            self.allocated = max(self.allocated, int(torch.cuda.max_memory_allocated(self.device)))
            self.reserved = max(self.reserved, int(torch.cuda.max_memory_reserved(self.device)))

    def facts(self, memory: list[dict], seconds: float, step_downs: int) -> dict:
        """``peak_allocated_bytes``, ``peak_reserved_bytes``, ``memory_measure``, ``tokens_per_s``,
        ``oom_step_downs`` — the keys the metrics recorder maps to its memory, throughput and OOM names."""
        if self.device.type == "cuda":
            allocated: Optional[int] = self.allocated
            reserved: Optional[int] = self.reserved
            measure = "cuda caching allocator"
        else:
            peaks = [int(m["peak"]) for m in memory if m.get("peak") is not None]
            allocated = reserved = max(peaks) if peaks else None
            measure = "cpu profiler allocation events (no allocator pool: reserved = allocated)"
        return {"peak_allocated_bytes": allocated, "peak_reserved_bytes": reserved, "memory_measure": measure,
                "tokens_per_s": round(self.tokens / seconds, 3) if seconds > 0 else 0.0,
                "oom_step_downs": step_downs}


def _rows(batch: dict) -> int:
    return int(next(iter(batch.values())).shape[0]) if batch else 0
