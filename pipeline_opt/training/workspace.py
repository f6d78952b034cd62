"""Memory a kernel allocates and frees inside one operator, which a trace of operator outputs cannot see.

Invariants: a rule returns the bytes of such a workspace from the operator's arguments and outputs alone; the trace
records it as an allocation freed right after the operator's outputs appear, so it raises the peak only while the
operator runs. Rules are per device and were measured with torch's profiler: on CPU, convolutions in fp32 (oneDNN)
reorder their input or output and the weight (backward: the output gradient, the input and the weight, plus in
16-bit a scratchpad of fixed size); in 16-bit on a CPU whose oneDNN has no 16-bit convolution
(``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` false) they run through im2col, whose column buffer is
N × C_in × kh × kw × H_out × W_out elements. CUDA's cuDNN workspaces are not
modelled (0): the GPU run measures them.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable, Optional

import torch

_aten = torch.ops.aten
# oneDNN's 16-bit convolution backward takes a scratchpad whatever the shapes (36,228 bytes measured on an
# AVX-512 BF16 CPU): it dominates small convolutions, vanishes beside large ones
CONV16_BACKWARD_SCRATCH = 36 << 10


def _bytes(t) -> int:
    return t.numel() * t.element_size() if isinstance(t, torch.Tensor) else 0


@lru_cache(maxsize=1)
def _cpu_conv16_im2col() -> bool:
    try:
        return not torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):
        return True


def _columns(x: torch.Tensor, weight: torch.Tensor, spatial_out: tuple) -> int:
    kernel = 1
    for k in weight.shape[2:]:
        kernel *= k
    positions = 1
    for d in spatial_out:
        positions *= d
    return x.shape[0] * x.shape[1] * kernel * positions * x.element_size()


def _conv_forward(args, out) -> int:
    x, weight = args[0], args[1]
    if x.element_size() == 2 and _cpu_conv16_im2col():
        return _columns(x, weight, tuple(out.shape[2:]))
    return max(_bytes(x), _bytes(out)) + _bytes(weight)


def _conv_backward(args, out) -> int:
    grad_out, x, weight = args[0], args[1], args[2]
    if x.element_size() == 2 and _cpu_conv16_im2col():
        return _columns(x, weight, tuple(grad_out.shape[2:]))
    reordered = _bytes(grad_out) + _bytes(x) + _bytes(weight)
    return reordered + (CONV16_BACKWARD_SCRATCH if x.element_size() == 2 else 0)


RULES: dict[str, dict] = {
    "cpu": {_aten.convolution.default: _conv_forward, _aten.convolution_backward.default: _conv_backward},
    "cuda": {},
}


def rule(device: str, func) -> Optional[Callable]:
    return RULES.get(device, {}).get(func)
