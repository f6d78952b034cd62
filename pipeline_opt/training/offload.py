"""Offload to host memory: saved activations (any device) and optimizer state (CUDA only).

Invariants: offloading moves bytes, never changes values; on a CPU-only machine activation offload is a no-op in
memory terms (host and device are the same memory), and optimizer offload refuses with ``CudaRequiredError``
instead of silently running something else.
"""
from __future__ import annotations

import torch

from pipeline_opt.training import CudaRequiredError


def activation_offload(device: torch.device):
    """Context in which tensors saved for backward live in host memory (pinned when the device is CUDA)."""
    return torch.autograd.graph.save_on_cpu(pin_memory=torch.device(device).type == "cuda")


def cpu_offload_optimizer(params, lr: float, offload_gradients: bool = True, **kwargs):
    """torchao ``CPUOffloadOptimizer`` around fused ``torch.optim.AdamW``: state and step on the host.

    ``offload_gradients`` frees device gradients as soon as they are copied (not compatible with gradient
    accumulation). Needs CUDA: torchao streams the copies on a CUDA stream.
    """
    if not torch.cuda.is_available():
        raise CudaRequiredError("optimizer 'cpu_offload' (torchao CPUOffloadOptimizer) needs a CUDA device; "
                                "use adamw8bit or adamw4bit to save optimizer memory on CPU")
    from torchao.optim import CPUOffloadOptimizer

    return CPUOffloadOptimizer(params, torch.optim.AdamW, offload_gradients=offload_gradients, lr=lr,
                               fused=True, **kwargs)
