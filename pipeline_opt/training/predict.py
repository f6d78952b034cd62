"""Predicted peak memory (allocated and, on CUDA, reserved) and speed of one plan for one workload.

Invariants: a prediction is static bytes — parameters and optimizer state, exact from the parameter shapes and
each optimizer's state layout, per rank when sharded — plus the peak of the traced step's live bytes (saved
activations, temporaries, gradients as backward makes them; under FSDP2 the gathered units and the reduce-scatter
of each unit's gradients) plus the optimizer step's temporaries. On CUDA the same step is replayed through the
caching-allocator model for what ``max_memory_allocated`` (512-byte blocks, unsplit remainders) and
``max_memory_reserved`` (segments) report, plus the fixed cuBLAS workspace. Nothing real is allocated.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

from pipeline_opt.training import checkpointing, optimizers
from pipeline_opt.training.plan import Plan
from pipeline_opt.training.precision import get_precision
from pipeline_opt.training.profile import Profile, Traced, _numel
from pipeline_opt.training.reserve import replay_steps
from pipeline_opt.training.speed import StepWork, relative_speed
from pipeline_opt.training.timeline import Shards, extension_weights, fsdp_extra
from pipeline_opt.training.workload import Workload

CUDA_FIXED_BYTES = 32 << 20  # the cuBLAS workspace PyTorch keeps per handle and stream on Hopper (a prior)
MAX_REPLAY_PARAMS = 20_000  # replayed one by one; beyond, allocated and reserved are scaled from a partial replay
BF16_SR_EAGER_TMP = 10.25  # torchao AdamW with bf16 stochastic rounding, eager: × fp32 bytes of the largest tensor
_PROFILES: "OrderedDict[Workload, Profile]" = OrderedDict()


@dataclass
class Prediction:
    plan: str
    peak_bytes: int
    params: int
    grads: int
    optimizer_state: int
    activations: int
    transient: int
    relative_speed: float
    reserved_bytes: Optional[int] = None  # CUDA only: what the caching allocator holds
    micro_batch: int = 1
    accumulation: int = 1
    ranks: int = 1
    fits: Optional[bool] = None
    needs_cuda: bool = False
    estimate: bool = False  # budget:F, interpolated between full and no checkpointing
    refused: Optional[str] = None  # why the plan is not offered (e.g. unsafe with this model)

    @property
    def device_bytes(self) -> int:
        """What the device must hold for the plan: on CUDA the reserved segments (an allocation the allocator cannot
        place in them makes it reserve more, and that is where out-of-memory happens), else the allocated peak."""
        return max(self.peak_bytes, self.reserved_bytes or 0)

    @property
    def peak_gib(self) -> float:
        return self.peak_bytes / 2**30

    @property
    def reserved_gib(self) -> Optional[float]:
        return None if self.reserved_bytes is None else self.reserved_bytes / 2**30


def profile_of(workload: Workload) -> Profile:
    """The (cached) profile of ``workload``; the micro-batch is not part of the key."""
    key = workload.with_batch(1)
    if key not in _PROFILES:
        _PROFILES[key] = Profile(workload)
        while len(_PROFILES) > 8:
            _PROFILES.popitem(last=False)
    _PROFILES.move_to_end(key)
    return _PROFILES[key]


def predict_workload(workload: Workload, plan: Plan, device: str = "cuda", *, micro_batch: Optional[int] = None,
                     ranks: int = 1, compiled_step: Optional[bool] = None) -> Prediction:
    """``plan`` on ``workload`` whose batch spec gives the rows per rank and optimizer step; ``micro_batch`` rows
    per forward (the rest accumulated); ``ranks`` the processes FSDP2 shards over."""
    plan.validate()
    prof = profile_of(workload)
    batch = workload.batch
    micro = micro_batch or batch
    ckpt = checkpointing.parse(plan.checkpointing)
    if ckpt.kind == "budget":
        return _budget_estimate(workload, plan, device, micro, ranks, compiled_step, ckpt.budget)
    if ckpt.kind == "offload" and device != "cuda":
        ckpt = checkpointing.parse("none")  # host memory is the device's memory on a CPU
    return _predict(prof, plan, ckpt, device, micro, max(batch // micro, 1), ranks, compiled_step)


def _predict(prof: Profile, plan: Plan, ckpt, device: str, micro: int, accumulation: int, ranks: int,
             compiled_step: Optional[bool]) -> Prediction:
    prec, spec = get_precision(plan.precision), optimizers.get_spec(plan.optimizer)
    kernels = "cuda" if device == "cuda" else "cpu"
    traced = prof.traced(prec, ckpt, prof.workload.batch, linear=micro != prof.workload.batch, device=kernels)
    if micro != traced.timeline.micro_a and not traced.timeline.linear:
        traced = prof.traced(prec, ckpt, micro, device=kernels)  # not linear in the batch: trace this batch
    shards = ranks if plan.sharded else 1
    compiled = device == "cuda" if compiled_step is None else compiled_step
    key = ("memory", prec.param_dtype, prec.compute_bytes, ckpt.name, spec.name, device, micro, accumulation,
           shards, plan.shard, compiled)
    if key not in prof.memo:
        prof.memo[key] = _memory(prof, traced, prec, spec, plan.shard, device, micro, accumulation, shards, compiled)
    mem = prof.memo[key]
    speed = _speed(prof, traced, plan, ckpt, device, micro, accumulation, shards, plan.shard == "fsdp2_offload",
                   prec.param_bytes)
    return Prediction(plan.name, relative_speed=speed, micro_batch=micro, accumulation=accumulation, ranks=ranks,
                      needs_cuda=spec.needs_cuda, **mem)


def _memory(prof: Profile, traced: Traced, prec, spec, shard: str, device: str, micro: int, accumulation: int,
            shards: int, compiled: bool) -> dict:
    offload = shard == "fsdp2_offload"
    counts = prof.params.sharded(shards)
    pb = prec.param_bytes
    params = 0 if offload else sum(_numel(s) * c * pb for s, c in counts.items())
    opt = 0 if offload else sum(spec.state_bytes(_numel(s), pb) * c for s, c in counts.items())
    if spec.name == "cpu_offload":  # torchao keeps tensors under 4096 elements (and their state) on the device
        opt = sum(2 * _numel(s) * pb * c for s, c in counts.items() if _numel(s) < 4096)
    held_grads = accumulation > 1 or spec.name == "cpu_offload"
    grads_total = 0 if offload or spec.name == "cpu_offload" else params
    live, weights_g = _live(prof, traced, micro, shards, offload, held_grads, device, pb)
    tl = traced.timeline
    s = tl.period_growth(micro, traced.period)
    dyn = live + traced.extra_periods * extension_weights(tl, s, 0.0 if held_grads else weights_g)
    if held_grads:
        dyn = dyn + (grads_total if accumulation > 1 else prof.params.largest() * pb)
    largest_shard = max((_numel(s) for s in counts), default=0)
    step_tmp = 0 if offload else _step_transient(spec, largest_shard, compiled, pb)
    peak = params + opt + max(float(dyn.max()), float(dyn[-1] + step_tmp))
    acts = int(live[tl.at("loss") or 0] + traced.extra_periods * s)
    mem = dict(peak_bytes=int(peak), params=params, grads=grads_total, optimizer_state=opt, activations=acts,
               transient=int(peak - params - opt - acts))
    if device == "cuda":
        whole = (prof.params.ordered is not None and traced.extra_periods == 0 and shards == 1
                 and spec.name != "cpu_offload")
        allocated, reserved = (_replayed(prof, traced, prec, spec, micro, accumulation, step_tmp) if whole else
                               _scaled(prof, traced, prec, int(peak)))
        mem.update(peak_bytes=allocated + CUDA_FIXED_BYTES, reserved_bytes=reserved + CUDA_FIXED_BYTES)
    return mem


def _live(prof: Profile, traced: Traced, micro: int, shards: int, offload: bool, held_grads: bool, device: str,
          pb: int) -> tuple[np.ndarray, float]:
    """Live bytes of the traced step on one rank, and the gradient bytes one extra period leaves behind."""
    tl = traced.timeline
    period_numel = sum(prof.params.unit_numels[:traced.period]) if prof.params.unit_numels else 0
    if shards == 1:
        return tl.live(micro, grads=not held_grads), period_numel * pb
    units = [n * pb for n in prof.params.unit_numels[:traced.traced]]
    keep = 0.0 if offload or held_grads else 1 / shards
    extra = fsdp_extra(tl, micro, Shards(shards, 1 if device == "cuda" else 0, keep), units,
                       prof.params.rest_numel * pb)
    return tl.live(micro, grads=True, extra=extra), period_numel * pb * keep


def _step_transient(spec, largest: int, compiled: bool, param_bytes: int) -> int:
    """torchao updates one tensor at a time (dequantize, update, requantize): eagerly ``spec.eager_tmp`` × the
    fp32 size of the largest tensor (measured on CPU), compiled about 2× (fused kernel). With bf16 weights plain
    AdamW is torchao's too (fp32 copies for stochastic rounding: ``BF16_SR_EAGER_TMP`` × measured)."""
    if spec.bits == 0 and not (spec.name == "adamw" and param_bytes == 2):
        return 0
    factor = spec.eager_tmp if spec.bits else BF16_SR_EAGER_TMP
    return int(largest * 4 * (2 if compiled else factor))


def _speed(prof: Profile, traced: Traced, plan: Plan, ckpt, device: str, micro: int, accumulation: int,
           shards: int, offload: bool, pb: int) -> float:
    flops = prof.flops(traced, micro) * accumulation
    blocks = max(prof.stack_blocks, 1)
    recomputed = ckpt.wrapped_count(prof.stack_blocks) / blocks if prof.stack_blocks else 0.0
    offloaded = 0
    if ckpt.kind == "offload" and device == "cuda":
        offloaded = int(traced.timeline.period_growth(micro, 1) * prof.stack_blocks * accumulation)
    work = StepWork(flops, prof.params.numel, pb, recomputed, offloaded, accumulation, shards, offload)
    prec = get_precision(plan.precision)
    speed = relative_speed(work, plan.precision, prec.autocast_dtype is not None, ckpt.kind, plan.compile,
                           plan.optimizer, device)
    return round(speed, 3)


def _replayed(prof: Profile, traced: Traced, prec, spec, micro: int, accumulation: int,
              step_tmp: int) -> tuple[int, int]:
    """Allocated and reserved peaks of the whole model's steps replayed through the caching-allocator model."""
    shapes = prof.params.ordered or []
    sizes = [_numel(s) * prec.param_bytes for s in shapes]
    states = [_state_sizes(spec, _numel(s), prec.param_bytes) for s in shapes]
    r = replay_steps(sizes, states, traced.timeline, micro, step_tmp, accumulation)
    return r.allocated, r.reserved


def _scaled(prof: Profile, traced: Traced, prec, peak: int) -> tuple[int, int]:
    """A peak the replay cannot cover whole (blocks extended in closed form, sharded ranks): scaled by the block
    rounding and segment overhead that replaying the traced part with AdamW's state layout shows."""
    key = ("ratios", id(traced.timeline), prec.param_bytes)
    if key not in prof.memo:
        shapes = (prof.params.ordered or list(prof.params.counts))[:MAX_REPLAY_PARAMS]
        sizes = [_numel(s) * prec.param_bytes for s in shapes]
        adamw = optimizers.get_spec("adamw")
        states = [_state_sizes(adamw, _numel(s), prec.param_bytes) for s in shapes]
        r = replay_steps(sizes, states, traced.timeline, traced.timeline.micro_a, 0)
        prof.memo[key] = (r.allocated / max(r.requested, 1), r.reserved / max(r.allocated, 1))
    block_ratio, segment_ratio = prof.memo[key]
    allocated = int(peak * block_ratio)
    return allocated, int(allocated * segment_ratio)


def _state_sizes(spec, numel: int, param_bytes: int) -> list[int]:
    """The optimizer state tensors of one parameter, as allocated at the first step."""
    total = spec.state_bytes(numel, param_bytes)
    if not total:
        return []
    step = [4] if spec.bits == 0 else []  # fused AdamW keeps its step count on the device
    return step + [total // 2, total - total // 2]


def _budget_estimate(workload: Workload, plan: Plan, device: str, micro: int, ranks: int,
                     compiled_step: Optional[bool], budget: float) -> Prediction:
    full = predict_workload(workload, replace(plan, checkpointing="full", compile=True), device,
                            micro_batch=micro, ranks=ranks, compiled_step=compiled_step)
    none = predict_workload(workload, replace(plan, checkpointing="none", compile=True), device,
                            micro_batch=micro, ranks=ranks, compiled_step=compiled_step)

    def mix(a, b):
        return None if a is None or b is None else int(a + budget * (b - a))

    return replace(none, plan=plan.name, peak_bytes=mix(full.peak_bytes, none.peak_bytes),
                   activations=mix(full.activations, none.activations),
                   transient=mix(full.transient, none.transient),
                   reserved_bytes=mix(full.reserved_bytes, none.reserved_bytes),
                   relative_speed=round((full.relative_speed + none.relative_speed) / 2, 3), estimate=True)
