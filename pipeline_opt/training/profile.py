"""What the planner knows about one workload: its parameter shapes and its traced steps, built without memory.

Invariants: the model is built inside a ``FakeTensorMode`` (nothing is allocated, whatever its size); parameter
shapes are those of the full model — for a factory with a ``stack_arg`` (the built-in GPT and MLP) a model of at
most ``MAX_TRACED_BLOCKS`` blocks is built and the rest counted in closed form, so planning 100,000 layers costs
what planning 8 does. A stack of identical blocks longer than ``MAX_TRACED_BLOCKS`` is traced in part and extended
in closed form (``timeline``); a stack of different blocks is traced whole, up to ``MAX_BLOCKS`` blocks, and a
model with more modules than ``MAX_MODULES`` is refused with one line. A failure while tracing names the module
it happened in.
"""
from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass
from typing import Optional

import torch

from pipeline_opt.training import checkpointing
from pipeline_opt.training.blocks import Stack, find_stack, truncated
from pipeline_opt.training.precision import cast_weights
from pipeline_opt.training.timeline import Timeline
from pipeline_opt.training.trace import BlockMarkers, Recorder, Trace, grad_hooks
from pipeline_opt.training.workload import Workload, WorkloadError

MAX_TRACED_BLOCKS = 8
MAX_BLOCKS = 512
MAX_MODULES = 50_000
MAX_ORDERED = 20_000


@dataclass
class ParamTable:
    """Parameter shapes of the full model: ``counts`` (shape → how many tensors), the element count of each
    block (``unit_numels``, in stack order) and of everything outside the blocks (``rest_numel``)."""

    counts: Counter
    unit_numels: list
    rest_numel: int
    ordered: Optional[list] = None  # every shape in model order, when there are at most MAX_ORDERED tensors

    @property
    def numel(self) -> int:
        return sum(_numel(s) * c for s, c in self.counts.items())

    def largest(self) -> int:
        return max((_numel(s) for s in self.counts), default=0)

    def sharded(self, ranks: int) -> Counter:
        """Shapes of one rank's shards: FSDP2 splits dim 0 in ``ranks`` chunks, padding the last."""
        if ranks == 1:
            return self.counts
        out: Counter = Counter()
        for s, c in self.counts.items():
            out[(-(-s[0] // ranks), *s[1:]) if s else ()] += c
        return out


def _numel(shape: tuple) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@dataclass(frozen=True)
class Traced:
    """A timeline and how it extends: ``traced`` blocks stand for ``blocks``, repeating every ``period``."""

    timeline: Timeline
    traced: int
    blocks: int
    period: int

    @property
    def extra_periods(self) -> int:
        return (self.blocks - self.traced) // self.period if self.traced < self.blocks else 0


class Profile:
    """Parameter table and traced steps of ``workload`` (traces cached per precision, checkpointing, batch)."""

    def __init__(self, workload: Workload):
        from torch._subclasses.fake_tensor import FakeTensorMode

        workload.check()
        self.workload = workload
        self.mode = FakeTensorMode()
        self._models: dict = {}
        self._traces: dict = {}
        self.memo: dict = {}  # predictions' memory parts and allocator ratios, by what they depend on
        self.rng_ops: set = set()
        model = self._model(torch.float32)
        self.stack_blocks = self._stack_length(model)
        self.params = self._param_table(model)

    def _stack_length(self, model) -> int:
        arg = self.workload.stack_arg
        return int(self.workload.kwargs[arg]) if arg and arg in self.workload.kwargs else len(find_stack(model))

    def _model(self, dtype: torch.dtype):
        if dtype not in self._models:
            arg, kw = self.workload.stack_arg, self.workload.kwargs
            override = {arg: min(int(kw[arg]), MAX_TRACED_BLOCKS)} if arg and arg in kw else {}
            with self.mode:
                try:
                    model = self.workload.build(**override)
                except WorkloadError:
                    raise
                except Exception as e:
                    raise WorkloadError(f"factory {self.workload.factory!r} failed while building the model: "
                                        f"{type(e).__name__}: {_first_line(e)}") from None
                model._planning = True  # models that fit statistics on their first batch skip it on fake data
                cast_weights(model, dtype)
            count = sum(1 for _ in model.modules())
            if count > MAX_MODULES:
                raise WorkloadError(f"factory {self.workload.factory!r}: the model has {count} modules; planning "
                                    f"traces at most {MAX_MODULES} (a stack_arg lets identical blocks be counted "
                                    "in closed form)")
            self._models[dtype] = model
        return self._models[dtype]

    def _param_table(self, model) -> ParamTable:
        stack = find_stack(model)
        in_blocks = {id(p) for b in stack.modules() for p in b.parameters()}
        rest = [tuple(p.shape) for p in model.parameters() if id(p) not in in_blocks]
        units = [[tuple(p.shape) for p in b.parameters()] for b in stack.modules()]
        counts: Counter = Counter(rest)
        for shapes in units:
            counts.update(shapes)
        numels = [sum(_numel(s) for s in u) for u in units]
        missing = self.stack_blocks - len(units)  # a stack_arg model: identical blocks counted in closed form
        built = [tuple(p.shape) for p in model.parameters()]
        if missing > 0 and units:
            for s in units[0]:
                counts[s] += missing
            numels += numels[:1] * missing
            last = max(i for i, p in enumerate(model.parameters()) if id(p) in in_blocks) + 1
            if len(built) + missing * len(units[0]) <= MAX_ORDERED:
                built = built[:last] + units[0] * missing + built[last:]
            else:
                built = []
        ordered = built if 0 < len(built) <= MAX_ORDERED else None
        return ParamTable(counts, numels, sum(_numel(s) for s in rest), ordered)

    def random_ops(self) -> set:
        """Random operators the model's step draws (traces the plain fp32 step if nothing was traced yet)."""
        if not self._traces:
            from pipeline_opt.training.precision import get_precision

            self.traced(get_precision("fp32"), checkpointing.parse("none"), self.workload.batch)
        return self.rng_ops

    def flops(self, traced: Traced, micro: int) -> float:
        """FLOPs of forward + backward at ``micro`` rows (counted on the trace, blocks extended: a block's
        backward counted as twice its forward)."""
        marks = traced.timeline.trace.flops
        total = marks.get("backward_end", 0.0)
        k = traced.traced
        if traced.extra_periods and k:
            per_period = sum(marks.get(f"fwd_end:{j}", 0) - marks.get(f"fwd_start:{j}", 0)
                             for j in range(k - traced.period, k))
            total += 3 * per_period * traced.extra_periods
        return total * micro / traced.timeline.micro_a

    def traced(self, precision, ckpt, micro: int, linear: bool = False, device: str = "cpu") -> Traced:
        """The step's timeline for ``precision`` and ``ckpt`` at micro-batch ``micro`` (with ``linear``, valid at
        every micro-batch: a second trace at twice the batch)."""
        model = self._model(precision.param_dtype)
        stack = find_stack(model)
        identical = stack.identical() and stack.single_container()
        if not identical and len(stack) > MAX_BLOCKS:
            raise WorkloadError(f"factory {self.workload.factory!r}: {len(stack)} blocks that are not identical; "
                                f"planning traces at most {MAX_BLOCKS}")
        period = ckpt.period
        blocks = self.stack_blocks
        keep = blocks
        if identical and blocks > MAX_TRACED_BLOCKS:
            keep = 2 * period + blocks % period
        compute = precision.autocast_dtype.itemsize if precision.autocast_dtype is not None else 0
        key = ("traced", precision.param_dtype, compute, ckpt.name, micro, linear, device)
        if key not in self.memo:
            a = self._trace(model, precision, ckpt, micro, keep, device)
            b = self._trace(model, precision, ckpt, 2 * micro, keep, device) if linear else None
            self.memo[key] = Traced(Timeline(a, micro, b, 2 * micro if linear else None), keep, blocks, period)
        return self.memo[key]

    def _trace(self, model, precision, ckpt, micro: int, keep: int, device: str) -> Trace:
        compute = precision.autocast_dtype.itemsize if precision.autocast_dtype is not None else 0
        key = (precision.param_dtype, compute, ckpt.name, micro, keep, device)  # fp16 and bf16 trace alike
        if key not in self._traces:
            self._traces[key] = self._run_trace(model, precision, ckpt, micro, keep, device)
            self.rng_ops |= self._traces[key].rng_ops
        return self._traces[key]

    def _run_trace(self, model, precision, ckpt, micro: int, keep: int, device: str) -> Trace:
        stack = find_stack(model)
        with self.mode, _keep_blocks(stack, keep):
            checkpointing.apply(model, ckpt)
            try:
                return self._step(model, precision, find_stack(model), micro, device)
            finally:
                checkpointing.unwrap(model)
                for p in model.parameters():
                    p.grad = None

    def _step(self, model, precision, stack: Stack, micro: int, device: str) -> Trace:
        batch = precision.cast_batch(self.workload.make_batch(micro))
        trace = Trace()
        recorder = Recorder(trace, [*model.parameters(), *model.buffers(), *batch.values()], device)
        owner = {id(p): i for i, b in enumerate(stack.modules()) for p in b.parameters()}
        hooks = grad_hooks(trace, recorder, [(p, owner.get(id(p), -1)) for p in model.parameters()])
        markers = BlockMarkers(trace, stack.modules(), lambda: recorder.flops)
        for m in stack.modules():
            if isinstance(m, checkpointing.Offloaded):
                m.saved_hooks = recorder.offload_hooks  # type: ignore[assignment]
        where = _ModuleStack(model)
        try:
            with recorder, recorder.cpu_generator_states(), where:
                with precision.autocast("cpu"):
                    loss = self.workload.loss_fn(model)(batch)
                trace.mark("loss")
                loss.backward()
                trace.mark("backward_end")
                recorder.closed = True
                trace.flops["backward_end"] = recorder.flops
                del loss
        except WorkloadError:
            raise
        except Exception as e:
            raise self._trace_error(e, where.failed_in) from None
        finally:
            markers.close()
            for h in hooks:
                h.remove()
        return trace

    def _trace_error(self, e: Exception, module: str) -> WorkloadError:
        spec = ", ".join(map(str, self.workload.inputs))
        kind = type(e).__name__
        if "DataDependent" in kind or "DynamicOutputShape" in kind:
            return WorkloadError(f"could not trace module {module!r} of {self.workload.factory!r}: {kind} "
                                 f"({_first_line(e)}): its shapes depend on the data; use static-shape routing "
                                 "(e.g. expert choice with a fixed capacity)")
        return WorkloadError(f"batch spec {spec} does not fit {self.workload.factory!r}: in module {module!r}: "
                             f"{kind}: {_first_line(e)}")


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__


@contextlib.contextmanager
def _keep_blocks(stack: Stack, keep: int):
    if keep >= len(stack):
        yield
        return
    with truncated(stack, keep):
        yield


class _ModuleStack:
    """Global module hooks naming the module a traced forward was in when it failed."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.names = {id(m): n or type(model).__name__ for n, m in model.named_modules()}
        self.stack: list[str] = []
        self.failed_in = type(model).__name__
        self._handles: list = []

    def __enter__(self):
        from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

        def pre(module, args):
            self.stack.append(self.names.get(id(module), type(module).__name__))
            self.failed_in = self.stack[-1]

        def post(module, args, out):
            if self.stack:
                self.stack.pop()
            self.failed_in = self.stack[-1] if self.stack else self.failed_in

        self._handles = [register_module_forward_pre_hook(pre), register_module_forward_hook(post)]
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        return False

