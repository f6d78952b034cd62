"""Optimizers by name, with the bytes of state each keeps per parameter.

Names: ``adamw`` (torch, fused kernel where the device has one), ``adamw8bit`` / ``adamw4bit`` / ``adamwfp8``
(torchao block-quantized state; run on CPU too), ``bnb8bit`` / ``bnb_paged8bit`` (bitsandbytes; CUDA), and
``cpu_offload`` (torchao ``CPUOffloadOptimizer``; CUDA). Parameters with sparse gradients (``nn.Embedding(sparse=
True)``) always go to ``torch.optim.SparseAdam``, whose state is touched only for the rows a batch uses.

Invariants: ``state_bytes`` is exact for the torch and torchao optimizers (the tests compare it with the tensors
the optimizer holds after a step); with bf16 weights (``pure_bf16``) the torchao optimizers round updates
stochastically, and plain ``adamw`` is replaced by torchao's AdamW with stochastic rounding, so updates smaller
than bf16's spacing are not lost.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from pipeline_opt.errors import require
from pipeline_opt.training import CudaRequiredError, TrainingError


@dataclass(frozen=True)
class OptimizerSpec:
    name: str
    bits: int                  # bits per element of each of the two Adam moments (0: same as the weights)
    block: int                 # quantization block (one fp32 scale per block); 0 = none
    min_quant_numel: int = 4096  # smaller tensors keep full-precision state
    code_bytes: int = 0        # the quantization code table each quantized moment carries
    eager_tmp: float = 0.0     # step temporaries of an eager update, × fp32 bytes of the largest tensor (measured)
    needs_cuda: bool = False
    on_device: bool = True     # False: the state lives in host memory

    def state_bytes(self, numel: int, param_bytes: int) -> int:
        """Bytes of the two Adam moments of one parameter tensor held in device memory."""
        if not self.on_device:
            return 0
        if self.bits == 0 or numel < self.min_quant_numel or (self.block and numel % self.block):
            return 2 * numel * param_bytes
        per_state = numel * self.bits // 8 + (numel // self.block) * 4 + self.code_bytes
        return 2 * per_state


OPTIMIZERS = {
    s.name: s
    for s in (
        OptimizerSpec("adamw", 0, 0),
        OptimizerSpec("adamw8bit", 8, 256, code_bytes=256 * 4, eager_tmp=13.3),
        OptimizerSpec("adamw4bit", 4, 128, code_bytes=16 * 4, eager_tmp=13.3),
        OptimizerSpec("adamwfp8", 8, 256, eager_tmp=6.0),
        OptimizerSpec("bnb8bit", 8, 256, code_bytes=256 * 4, needs_cuda=True),
        OptimizerSpec("bnb_paged8bit", 8, 256, needs_cuda=True, on_device=False),
        OptimizerSpec("cpu_offload", 0, 0, min_quant_numel=0, needs_cuda=True, on_device=False),
    )
}


def get_spec(name: str) -> OptimizerSpec:
    try:
        return OPTIMIZERS[name]
    except KeyError:
        raise TrainingError(f"unknown optimizer {name!r}; allowed: {', '.join(OPTIMIZERS)}") from None


def build(name: str, model: torch.nn.Module, lr: float, compile_step: bool = True):
    """The optimizer ``name`` over ``model``'s parameters (sparse-gradient ones to SparseAdam).

    ``compile_step=False`` runs torchao's update eagerly (no ``torch.compile``; slower per step, no compile wait).
    """
    spec = get_spec(name)
    device = next(model.parameters()).device
    if spec.needs_cuda and device.type != "cuda":
        raise CudaRequiredError(f"optimizer {name!r} needs a CUDA device; the model is on {device.type!r}")
    sparse = [p for m in model.modules() if isinstance(m, torch.nn.Embedding) and m.sparse for p in m.parameters()]
    dense = [p for p in model.parameters() if all(p is not s for s in sparse)]
    main = _dense_optimizer(name, dense, lr, device, compile_step)
    if not sparse:
        return main
    return CombinedOptimizer([main, torch.optim.SparseAdam(sparse, lr=lr)])


def _dense_optimizer(name: str, params: list, lr: float, device: torch.device, compile_step: bool):
    bf16 = any(p.dtype == torch.bfloat16 for p in params)
    if name == "adamw" and not bf16:
        return torch.optim.AdamW(params, lr=lr, fused=_fused_ok(device))
    if name in ("adamw", "adamw8bit", "adamw4bit", "adamwfp8"):
        import torchao.optim as ao

        cls = {"adamw": ao._AdamW, "adamw8bit": ao.AdamW8bit, "adamw4bit": ao.AdamW4bit,
               "adamwfp8": ao.AdamWFp8}[name]
        opt = cls(params, lr=lr, bf16_stochastic_round=bf16)
        return opt if compile_step else EagerStep(opt)
    if name in ("bnb8bit", "bnb_paged8bit"):
        bnb = require("bitsandbytes", "torch")
        cls = bnb.optim.PagedAdamW8bit if name == "bnb_paged8bit" else bnb.optim.AdamW8bit
        return cls(params, lr=lr)
    from pipeline_opt.training.offload import cpu_offload_optimizer

    return cpu_offload_optimizer(params, lr)


def _fused_ok(device: torch.device) -> bool:
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    return device.type in _get_fused_kernels_supported_devices()


class EagerStep:
    """Delegates to an optimizer but runs ``step`` with torch.compile disabled (same math, eager kernels)."""

    def __init__(self, inner):
        self.inner = inner

    def step(self, closure: Callable | None = None):
        with torch.compiler.set_stance("force_eager"):
            return self.inner.step(closure)

    def __getattr__(self, name):
        return getattr(self.inner, name)


class CombinedOptimizer:
    """Several optimizers over disjoint parameters, stepped together (dense + SparseAdam)."""

    def __init__(self, optimizers: list):
        self.optimizers = optimizers

    @property
    def param_groups(self):
        return [g for o in self.optimizers for g in o.param_groups]

    @property
    def state(self):
        return {k: v for o in self.optimizers for k, v in o.state.items()}

    def step(self, closure=None):
        for o in self.optimizers:
            o.step()

    def zero_grad(self, set_to_none: bool = True):
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)

    def state_dict(self):
        return {"optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state):
        for o, s in zip(self.optimizers, state["optimizers"]):
            o.load_state_dict(s)


def unwrap(optimizer) -> list:
    """The torch optimizers inside ``optimizer`` (for accounting and GradScaler)."""
    if isinstance(optimizer, CombinedOptimizer):
        return [x for o in optimizer.optimizers for x in unwrap(o)]
    if isinstance(optimizer, EagerStep):
        return [optimizer.inner]
    if hasattr(optimizer, "optim_dict"):  # torchao CPUOffloadOptimizer: host optimizers + one for small tensors
        return [*optimizer.optim_dict.values(), *([optimizer.d_opt] if optimizer.d_opt is not None else [])]
    return [optimizer]

