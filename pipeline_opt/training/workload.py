"""What is planned and trained: a model from a factory, a batch spec, and how a batch becomes a loss.

Invariants: a factory is named ``package.module:function`` and called with the given keyword arguments only (a
missing required argument is refused before the call); every input of a batch spec has the micro-batch as its
first dimension; the loss is ``loss(output, batch)`` when a loss function is named, else ``model.loss(batch)`` when
the model has one, else what ``forward`` returns (a scalar, a ``loss`` entry or attribute, or — standing in for a
loss the planner is not told — the mean of the output). Every bad value is one ``WorkloadError`` naming it.
"""
from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

from pipeline_opt.training import TrainingError


class WorkloadError(TrainingError):
    """A factory, its arguments, a batch spec or a loss function that cannot be used (the message names it)."""


_DTYPES = {"float32": "float32", "float": "float32", "fp32": "float32", "float16": "float16", "half": "float16",
           "bfloat16": "bfloat16", "bf16": "bfloat16", "int64": "int64", "long": "int64", "int32": "int32",
           "int": "int32", "bool": "bool", "uint8": "uint8"}
_SPEC = re.compile(r"^\s*(\w+)\s*=\s*(\w+)\s*\[([\d\s,]+)\]\s*(?:<\s*(\d+))?\s*$")


@dataclass(frozen=True)
class InputSpec:
    """One input: ``name=dtype[batch,d1,...]`` with ``<high`` for integer inputs (values drawn below it)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    high: Optional[int] = None

    @classmethod
    def parse(cls, text: str) -> "InputSpec":
        m = _SPEC.match(str(text))
        if not m or m.group(2).lower() not in _DTYPES:
            raise WorkloadError(f"batch spec {text!r} is not NAME=DTYPE[BATCH,...] (dtypes: "
                                f"{', '.join(sorted(set(_DTYPES.values())))}; integers may add <HIGH)")
        shape = tuple(int(d) for d in m.group(3).split(",") if d.strip())
        if not shape or min(shape) < 1:
            raise WorkloadError(f"batch spec {text!r}: every dimension must be at least 1")
        return cls(m.group(1), _DTYPES[m.group(2).lower()], shape, int(m.group(4)) if m.group(4) else None)

    def __str__(self) -> str:
        return f"{self.name}={self.dtype}[{','.join(map(str, self.shape))}]" + (f"<{self.high}" if self.high else "")

    def tensor(self, batch: int, device=None, generator=None):
        """A tensor of this input for ``batch`` rows: random values in range, or shape-only inside a fake mode."""
        import torch

        dtype = getattr(torch, self.dtype)
        shape = (batch, *self.shape[1:])
        if dtype.is_floating_point:
            return torch.randn(shape, generator=generator, device=device).to(dtype)
        high = self.high or (2 if dtype == torch.bool else 100)
        return torch.randint(0, high, shape, generator=generator, device=device).to(dtype)


def load_object(path: str, what: str) -> Any:
    """``package.module:name`` imported, or one ``WorkloadError`` naming the path."""
    module, _, name = str(path).partition(":")
    if not module or not name:
        raise WorkloadError(f"{what} {path!r} is not package.module:function")
    try:
        obj = importlib.import_module(module)
    except Exception as e:  # any import failure of user code is a bad value, said in one line
        raise WorkloadError(f"{what} {path!r} does not import: {type(e).__name__}: {e}") from None
    for part in name.split("."):
        if not hasattr(obj, part):
            raise WorkloadError(f"{what} {path!r}: module {module!r} has no {name!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise WorkloadError(f"{what} {path!r} is not callable")
    return obj


@dataclass(frozen=True)
class Workload:
    """A model factory with its arguments, the inputs of one micro-batch, and an optional loss function.

    ``stack_arg`` names the factory argument that sets how many identical blocks the model stacks (the planner
    then builds small versions and extends them in closed form instead of building every block)."""

    factory: str
    args: tuple = ()
    inputs: tuple[InputSpec, ...] = ()
    loss: Optional[str] = None
    stack_arg: Optional[str] = None

    @property
    def batch(self) -> int:
        return self.inputs[0].shape[0] if self.inputs else 1

    def with_batch(self, batch: int) -> "Workload":
        return replace(self, inputs=tuple(replace(i, shape=(batch, *i.shape[1:])) for i in self.inputs))

    @classmethod
    def of(cls, factory: str, args: Optional[dict] = None, inputs=(), loss: Optional[str] = None,
           stack_arg: Optional[str] = None) -> "Workload":
        """A workload from plain values (``inputs`` as ``InputSpec`` or spec strings; list arguments frozen)."""
        specs = tuple(i if isinstance(i, InputSpec) else InputSpec.parse(i) for i in inputs)
        return cls(factory, tuple(sorted((str(k), _freeze(v)) for k, v in (args or {}).items())), specs, loss,
                   stack_arg)

    def with_args(self, **args) -> "Workload":
        return Workload.of(self.factory, {**self.kwargs, **args}, self.inputs, self.loss, self.stack_arg)

    @property
    def kwargs(self) -> dict:
        return {k: _thaw(v) for k, v in self.args}

    def check(self) -> None:
        """Refuse, before anything is built, a factory that does not import or lacks required arguments, and
        inputs that disagree on the micro-batch."""
        fn = load_object(self.factory, "factory")
        try:
            inspect.signature(fn).bind(**self.kwargs)
        except TypeError as e:
            raise WorkloadError(f"factory {self.factory!r} cannot be called with {self.kwargs or 'no arguments'}: "
                                f"{e} (give it with --factory-arg NAME=VALUE or model.args)") from None
        except ValueError:
            pass  # builtins without a signature: the call itself will say
        if not self.inputs:
            raise WorkloadError(f"factory {self.factory!r}: no batch spec (--input NAME=DTYPE[BATCH,...])")
        batches = {i.shape[0] for i in self.inputs}
        if len(batches) > 1:
            raise WorkloadError(f"batch spec {', '.join(map(str, self.inputs))}: inputs disagree on the micro-batch "
                                f"(first dimension): {sorted(batches)}")
        if self.loss:
            load_object(self.loss, "loss")

    def build(self, **override):
        """The model (inside a fake or meta mode: shapes only)."""
        fn = load_object(self.factory, "factory")
        try:
            model = fn(**{**self.kwargs, **override})
        except TypeError as e:
            raise WorkloadError(f"factory {self.factory!r} failed with {self.kwargs}: {e}") from None
        import torch

        if not isinstance(model, torch.nn.Module):
            raise WorkloadError(f"factory {self.factory!r} returned {type(model).__name__}, not a torch.nn.Module")
        return model

    def make_batch(self, batch: Optional[int] = None, device=None, seed: int = 0) -> dict:
        import torch

        g = torch.Generator().manual_seed(seed)
        n = self.batch if batch is None else batch
        return {i.name: i.tensor(n, generator=g).to(device) if device else i.tensor(n, generator=g)
                for i in self.inputs}

    def loss_fn(self, model) -> Callable[[dict], Any]:
        """``batch -> scalar loss`` for ``model`` per the rules in the module docstring."""
        if self.loss:
            fn = load_object(self.loss, "loss")
            return lambda batch: fn(call_forward(model, batch, consume_all=False), batch)
        if callable(getattr(model, "loss", None)):
            return model.loss
        return lambda batch: output_loss(call_forward(model, batch, consume_all=True))


def _freeze(value):
    if isinstance(value, (list, tuple)):
        return ("__list__", *(_freeze(v) for v in value))
    if isinstance(value, dict):
        return ("__dict__", *sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def _thaw(value):
    if isinstance(value, tuple) and value and value[0] == "__list__":
        return [_thaw(v) for v in value[1:]]
    if isinstance(value, tuple) and value and value[0] == "__dict__":
        return {k: _thaw(v) for k, v in value[1:]}
    return value


def call_forward(model, batch: dict, consume_all: bool):
    """``model(**inputs)`` with the batch entries its ``forward`` takes; with ``consume_all`` an entry it does not
    take is an error (nothing else would use it)."""
    params = inspect.signature(model.forward).parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    names = [n for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    unused = [k for k in batch if k not in names and not takes_any]
    if unused and consume_all:
        raise WorkloadError(f"batch spec input {unused[0]!r} is not an argument of "
                            f"{type(model).__name__}.forward({', '.join(names)}) and no loss function takes it")
    missing = [n for n, p in params.items() if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD,
               p.KEYWORD_ONLY) and n not in batch]
    if missing:
        raise WorkloadError(f"{type(model).__name__}.forward needs {missing[0]!r}, which the batch spec "
                            f"({', '.join(batch)}) does not give")
    return model(**{k: v for k, v in batch.items() if takes_any or k in names})


def output_loss(out):
    """A scalar from what ``forward`` returned (see the module docstring)."""
    import torch

    if isinstance(out, dict) and "loss" in out:
        return out["loss"]
    if not isinstance(out, torch.Tensor) and isinstance(getattr(out, "loss", None), torch.Tensor):
        return out.loss
    if isinstance(out, (tuple, list)) and out:
        out = out[0]
    if isinstance(out, dict) and out:
        out = next(iter(out.values()))
    if not isinstance(out, torch.Tensor):
        raise WorkloadError(f"forward returned {type(out).__name__}; name a loss function (--loss pkg.mod:fn)")
    return out if out.dim() == 0 else out.float().mean()


def factory_workload(factory: str, args: list[str], inputs: list[str], loss: Optional[str] = None,
                     stack_arg: Optional[str] = None, batch: Optional[int] = None) -> Workload:
    """A workload from command-line values: ``NAME=VALUE`` arguments (values read as YAML: numbers, lists …);
    inputs and stack argument default to the factory module's ``INPUTS`` and ``STACK_ARG`` when it has them;
    ``batch`` replaces every input's first dimension."""
    import yaml

    load_object(factory, "factory")
    module = importlib.import_module(factory.partition(":")[0])
    kwargs = {}
    for item in args:
        name, sep, value = str(item).partition("=")
        if not sep or not name.strip().isidentifier():
            raise WorkloadError(f"factory argument {item!r} is not NAME=VALUE")
        try:
            kwargs[name.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise WorkloadError(f"factory argument {item!r}: {value!r} is not a value") from None
    specs = list(inputs) or list(getattr(module, "INPUTS", ()))
    stack = stack_arg or getattr(module, "STACK_ARG", None)
    wl = Workload.of(factory, kwargs, specs, loss, stack if stack in kwargs or stack_arg else None)
    return wl.with_batch(batch) if batch else wl
