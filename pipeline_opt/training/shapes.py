"""What the planner knows about a model: its kind and sizes, its parameters, and the activations it saves.

Invariant: nothing here allocates real memory for the model — parameters are built on the ``meta`` device and the
forward pass that measures saved activations runs on fake tensors (same dtypes and shapes as a real run, autocast
included), so planning a 368 M-parameter model takes seconds on a laptop.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import torch

from pipeline_opt.training import TrainingError
from pipeline_opt.training.model import GPT, MLP


@dataclass(frozen=True)
class ModelShape:
    """Model kind and sizes plus the micro-batch: everything peak memory depends on."""

    kind: str = "gpt"
    layers: int = 24
    d_model: int = 1024
    heads: int = 16
    vocab: int = 32000
    seq: int = 1024
    batch: int = 8
    in_features: int = 0

    def with_batch(self, batch: int) -> "ModelShape":
        return replace(self, batch=batch)

    @property
    def tokens(self) -> int:
        return self.batch * (self.seq if self.kind == "gpt" else 1)

    def build(self, layers: Optional[int] = None) -> GPT | MLP:
        layers = self.layers if layers is None else layers
        if self.kind == "gpt":
            if self.d_model % self.heads:
                raise TrainingError(f"d_model {self.d_model} is not divisible by heads {self.heads}")
            return GPT(self.vocab, self.d_model, layers, self.heads)
        if self.kind == "mlp":
            return MLP(max(self.in_features, 1), self.d_model, layers)
        raise TrainingError(f"unknown model kind {self.kind!r}; allowed: gpt, mlp")

    def batch_tensors(self) -> dict:
        if self.kind == "gpt":
            return {"tokens": torch.zeros(self.batch, self.seq, dtype=torch.long)}
        return {"x": torch.zeros(self.batch, max(self.in_features, 1)), "y": torch.zeros(self.batch)}


def param_numels(shape: ModelShape) -> list[int]:
    """Element count of every parameter tensor (built on the meta device: no memory)."""
    with torch.device("meta"):
        model = shape.build()
    return [p.numel() for p in model.parameters()]


def _fake_saved_bytes(shape: ModelShape, layers: int, precision, save_ops: bool = False) -> int:
    """Bytes autograd saves in one fake forward of a ``layers``-block model (``save_ops``: only what the
    selective policy keeps — outputs of matmuls and attention — plus the block inputs)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from pipeline_opt.training.memory import SavedActivations

    with FakeTensorMode():
        model = shape.build(layers)
        # the MLP skips fitting its input scaling on fake data; torch types Module.__setattr__ for tensors and
        # modules only, though any value is stored as a plain attribute
        model._planning = True  # type: ignore[assignment]
        precision.prepare(model)
        batch = shape.batch_tensors()
        if save_ops:
            return _save_ops_bytes(model, batch, precision)
        with SavedActivations(model) as meter, precision.autocast("cpu"):
            model.loss(batch)
        return meter.bytes


def _save_ops_bytes(model, batch, precision) -> int:
    from torch.utils._python_dispatch import TorchDispatchMode

    from pipeline_opt.training.checkpointing import _SAVE_OPS
    from pipeline_opt.training.memory import tensor_bytes

    class Meter(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func in _SAVE_OPS:
                outs = out if isinstance(out, (tuple, list)) else (out,)
                Meter.total += sum(tensor_bytes(o) for o in outs if torch.is_tensor(o))
            return out

    block = model.blocks[0]
    x = _block_input(model, batch)
    with Meter(), precision.autocast("cpu"):
        block(x)
    return Meter.total + tensor_bytes(x)


def _block_input(model, batch) -> torch.Tensor:
    if isinstance(model, GPT):
        return model.emb(batch["tokens"]).requires_grad_()
    return torch.zeros(batch["x"].shape[0], model.inp.out_features, dtype=model.inp.weight.dtype).requires_grad_()


@dataclass(frozen=True)
class ActivationProfile:
    """Saved-activation bytes of one micro-batch: outside the blocks, per block under each treatment."""

    rest: int          # embedding, final norm, head and loss
    block: int         # one block, nothing recomputed
    block_input: int   # one block's input (what full checkpointing keeps)
    block_ops: int     # one block under selective-by-op checkpointing


def activation_profile(shape: ModelShape, precision) -> ActivationProfile:
    rest = _fake_saved_bytes(shape, 0, precision)
    block = _fake_saved_bytes(shape, 1, precision) - rest
    ops = _fake_saved_bytes(shape, 1, precision, save_ops=True)
    width = shape.d_model
    residual_bytes = 4 if precision.param_dtype == torch.float32 else precision.param_bytes
    block_input = shape.tokens * width * residual_bytes
    return ActivationProfile(rest, block, block_input, ops)
