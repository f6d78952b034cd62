"""Checkpoint files that load with ``torch.load(weights_only=True)``: tensors and plain data, nothing that runs.

Invariants: a checkpoint holds only tensors, numbers, strings, bools, None, dtypes, sizes and containers of them —
a tensor subclass (torchao's quantized optimizer state, a DTensor shard) is written as its plain inner tensors plus
a tag, and only classes in ``SUBCLASSES`` are rebuilt from a tag; so loading a file copied from elsewhere never
runs code it carries, and a file that tries to is refused with one ``CheckpointError`` line. Writes are atomic
(temporary file, then rename).
"""
from __future__ import annotations

import importlib
import pickle
from pathlib import Path
from typing import Any

import torch

from pipeline_opt.training import TrainingError

# tensor subclasses a checkpoint may hold, rebuilt from their inner tensors (``__tensor_unflatten__``)
SUBCLASSES = ("torchao.optim.subclass_8bit.OptimState8bit", "torchao.optim.subclass_4bit.OptimState4bit",
              "torchao.optim.subclass_fp8.OptimStateFp8")
_TAG = "__tensor_subclass__"


class CheckpointError(TrainingError):
    """A checkpoint that cannot be loaded safely or does not belong to this run (the message names the file)."""


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        if type(value) in (torch.Tensor, torch.nn.Parameter):
            return value.detach()
        if hasattr(value, "to_local"):  # a DTensor: this rank's shard; the placement comes from the live model
            return value.to_local().detach()
        names, ctx = value.__tensor_flatten__()  # type: ignore[attr-defined]  # a traceable tensor subclass
        return {_TAG: f"{type(value).__module__}.{type(value).__qualname__}",
                "inner": {n: _plain(getattr(value, n)) for n in names}, "ctx": list(ctx)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def _rebuilt(value: Any) -> Any:
    if isinstance(value, dict) and _TAG in value:
        name = value[_TAG]
        if name not in SUBCLASSES:
            raise CheckpointError(f"checkpoint holds tensor class {name!r}, which is not one this package rebuilds")
        module, _, cls = name.rpartition(".")
        klass = getattr(importlib.import_module(module), cls)
        return klass.__tensor_unflatten__({k: _rebuilt(v) for k, v in value["inner"].items()}, value["ctx"],
                                          None, None)
    if isinstance(value, dict):
        return {k: _rebuilt(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_rebuilt(v) for v in value)
    return value


def save(state: dict, path: str | Path) -> Path:
    """Write ``state`` (any nesting of tensors and plain data) atomically in the safe form."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(_plain(state), tmp)
    tmp.replace(path)
    return path


def load(path: str | Path, map_location=None) -> dict:
    """Read a checkpoint with ``weights_only=True``; anything else in it is refused in one line."""
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError, ValueError, EOFError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise CheckpointError(f"checkpoint {str(path)!r} refused: it holds more than tensors and plain data, or is "
                              f"not a checkpoint (weights_only load: {first})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} is not a mapping of states")
    return _rebuilt(data)


def shard_like(state: dict, reference: dict) -> dict:
    """``state`` with each tensor placed like the DTensor at the same key of ``reference`` (plain tensors stay)."""
    out = {}
    for key, value in state.items():
        ref = reference.get(key)
        if ref is not None and hasattr(ref, "device_mesh") and isinstance(value, torch.Tensor):
            from torch.distributed.tensor import DTensor

            value = DTensor.from_local(value.to(ref.to_local().device), ref.device_mesh, ref.placements,
                                       shape=ref.shape, stride=ref.stride())
        out[key] = value
    return out


def shard_optimizer_state(state: dict, params: list) -> dict:
    """Optimizer ``state`` with each per-parameter tensor shaped like a DTensor parameter's shard placed like it."""
    for index, entry in state.get("state", {}).items():
        p = params[index] if isinstance(index, int) and index < len(params) else None
        if p is None or not hasattr(p, "device_mesh"):
            continue
        local = p.to_local()
        for k, v in entry.items():
            if isinstance(v, torch.Tensor) and v.shape == local.shape:
                from torch.distributed.tensor import DTensor

                entry[k] = DTensor.from_local(v.to(local.device), p.device_mesh, p.placements, shape=p.shape,
                                              stride=p.stride())
    return state
