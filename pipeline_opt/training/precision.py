"""Precision modes, one class each, chosen by name from ``PRECISIONS``.

Invariants: ``fp32`` changes nothing; ``bf16`` / ``fp16`` keep fp32 weights and run matmuls under autocast
(``fp16`` adds a ``GradScaler`` so small gradients do not underflow); ``pure_bf16`` stores weights, gradients and
optimizer state in bf16, and asks the optimizer for stochastic rounding of the update (see ``optimizers``) so small
updates are not rounded away.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Optional

import torch

from pipeline_opt.training import TrainingError


@dataclass(frozen=True)
class Precision:
    """How weights are stored and how the forward pass computes."""

    name: str
    param_dtype: torch.dtype = torch.float32
    autocast_dtype: Optional[torch.dtype] = None
    uses_scaler: bool = False

    @property
    def param_bytes(self) -> int:
        return torch.empty((), dtype=self.param_dtype).element_size()

    @property
    def compute_bytes(self) -> int:
        """Bytes per element of the activations the forward pass saves for matmuls."""
        dtype = self.autocast_dtype or self.param_dtype
        return torch.empty((), dtype=dtype).element_size()

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        """Cast the weights in place (only ``pure_bf16`` does); see ``cast_weights``."""
        return cast_weights(model, self.param_dtype)

    def cast_batch(self, batch: dict) -> dict:
        """Floating-point inputs in the weights' dtype when the weights are not fp32 (``pure_bf16``)."""
        if self.param_dtype == torch.float32:
            return batch
        return {k: v.to(self.param_dtype) if v.is_floating_point() else v for k, v in batch.items()}

    def autocast(self, device_type: str):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type, dtype=self.autocast_dtype)

    def scaler(self, device_type: str):
        """A ``GradScaler`` for fp16 (CUDA, or CPU where this torch supports it), else None."""
        if not self.uses_scaler:
            return None
        try:
            return torch.amp.GradScaler(device_type)
        except (RuntimeError, AssertionError) as e:
            raise TrainingError(f"precision 'fp16' needs a GradScaler on {device_type!r}: {e}") from None


def cast_weights(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """Parameters (and batch norm's running statistics, which its kernels want in the weights' dtype) in
    ``dtype``; other buffers — statistics a model keeps itself — stay as they are."""
    if dtype == torch.float32:
        return model
    for p in model.parameters():
        p.data = p.data.to(dtype)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._NormBase):
            for name in ("running_mean", "running_var"):
                if getattr(m, name, None) is not None:
                    setattr(m, name, getattr(m, name).to(dtype))
    return model


PRECISIONS = {
    p.name: p
    for p in (
        Precision("fp32"),
        Precision("bf16", autocast_dtype=torch.bfloat16),
        Precision("fp16", autocast_dtype=torch.float16, uses_scaler=True),
        Precision("pure_bf16", param_dtype=torch.bfloat16),
    )
}


def get_precision(name: str) -> Precision:
    try:
        return PRECISIONS[name]
    except KeyError:
        raise TrainingError(f"unknown precision {name!r}; allowed: {', '.join(PRECISIONS)}") from None
