"""The planner: predicted peak memory and relative speed of every combination; the fastest that fits wins.

Invariants: a prediction is static bytes (parameters, gradients, optimizer state — exact, from the parameter shapes
and each optimizer's state layout) + saved activations (measured on fake tensors, see ``shapes``) + the largest
transient (loss backward, a recomputed block, the optimizer step). ``choose`` never returns a plan predicted over
budget; plans are ranked by predicted speed, ties broken by less numerical compromise, then lower memory. Speeds
are relative to fp32 + AdamW on the same device; their coefficients are priors (``SPEED_PRIORS``) that a benchmark
run replaces with measurements.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Optional, TypedDict

from pipeline_opt.training import TrainingError, checkpointing, optimizers
from pipeline_opt.training.precision import PRECISIONS, get_precision
from pipeline_opt.training.shapes import ModelShape, activation_profile, param_numels


@dataclass(frozen=True)
class Plan:
    precision: str = "fp32"
    checkpointing: str = "none"
    optimizer: str = "adamw"
    compile: bool = False

    @property
    def name(self) -> str:
        return "+".join([self.precision, self.checkpointing, self.optimizer] + (["compile"] if self.compile else []))

    @classmethod
    def parse(cls, name: str) -> "Plan":
        parts = name.split("+")
        if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] != "compile"):
            raise TrainingError(f"plan {name!r} is not PRECISION+CHECKPOINTING+OPTIMIZER[+compile]")
        plan = cls(parts[0], parts[1], parts[2], len(parts) == 4)
        plan.validate()
        return plan

    def validate(self) -> None:
        get_precision(self.precision), checkpointing.parse(self.checkpointing), optimizers.get_spec(self.optimizer)


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
    fits: Optional[bool] = None
    needs_cuda: bool = False

    @property
    def peak_gib(self) -> float:
        return self.peak_bytes / 2**30


class _SpeedPriors(TypedDict):
    """One device's coefficients: step-time factors, the host link, optimizer step times, the fp32 reference."""

    autocast: float
    pure_bf16: float
    compile: float
    recompute: float
    ops_recompute: float
    host_link_bytes_per_s: float
    opt_ms_per_368m: dict[str, float]
    fp32_ms_per_ref_step: float


# Relative step-time coefficients per device (fp32 eager = 1). GPU values are priors taken from the anchor run on
# one H200 (bf16 autocast 6.75×, compile 1.24× on top, full recompute 1.39× time, optimizer step costs per 368 M
# params; torchao's per-tensor bf16 AdamW and the host link speed are guesses); the benchmark measures the real ones.
# CPU: no tensor cores, bf16 matmuls run at about fp32 speed.
SPEED_PRIORS: dict[str, _SpeedPriors] = {
    "cuda": {"autocast": 1 / 6.75, "pure_bf16": 1 / 7.0, "compile": 0.80, "recompute": 0.39, "ops_recompute": 0.12,
             "host_link_bytes_per_s": 25e9,
             "opt_ms_per_368m": {"adamw": 5, "adamw_bf16_sr": 100, "adamw8bit": 200, "adamw4bit": 200,
                                 "adamwfp8": 200, "bnb8bit": 66, "bnb_paged8bit": 70, "cpu_offload": 176},
             "fp32_ms_per_ref_step": 401.0},
    "cpu": {"autocast": 1.0, "pure_bf16": 1.0, "compile": 0.9, "recompute": 0.33, "ops_recompute": 0.12,
            "host_link_bytes_per_s": 1e12,
            "opt_ms_per_368m": {"adamw": 2000, "adamw_bf16_sr": 8000, "adamw8bit": 8000, "adamw4bit": 8000,
                                "adamwfp8": 8000, "bnb8bit": 4000, "bnb_paged8bit": 4000, "cpu_offload": 2000},
            "fp32_ms_per_ref_step": 400_000.0},
}
_CACHE: dict = {}  # (shape) → parameter sizes, (shape, precision) → activation profile; both pure functions
_REF_FLOPS = 6 * 368e6 * 8192 + 12 * 24 * 1024 * 1024 * 8192


def predict(shape: ModelShape, plan: Plan, device: str = "cuda", _cache: Optional[dict] = None,
            compiled_step: Optional[bool] = None) -> Prediction:
    """Predicted peak memory and relative speed of ``plan`` for ``shape`` on ``device`` (cuda or cpu).

    ``compiled_step``: whether torchao's optimizer step is compiled (default: on cuda yes, on cpu no)."""
    compiled_step = device == "cuda" if compiled_step is None else compiled_step
    prec = get_precision(plan.precision)
    ckpt = checkpointing.parse(plan.checkpointing)
    spec = optimizers.get_spec(plan.optimizer)
    cache = _cache if _cache is not None else _CACHE
    if shape not in cache:
        cache[shape] = param_numels(shape)
    numels = cache[shape]
    key = (shape, prec.name)
    if key not in cache:
        cache[key] = activation_profile(shape, prec)
    prof = cache[key]
    params = sum(numels) * prec.param_bytes
    grads = params
    opt = sum(spec.state_bytes(n, prec.param_bytes) for n in numels)
    if spec.name == "cpu_offload":  # torchao keeps tensors under 4096 elements (and their state) on the device
        opt = sum(2 * n * prec.param_bytes for n in numels if n < 4096)
        grads = max(numels) * prec.param_bytes
    acts, recompute = _activations(shape, prof, ckpt, device)
    head_grad = numels[-1] * prec.param_bytes if shape.kind == "gpt" else 0
    loss_tmp = 8 * shape.tokens * shape.vocab if shape.kind == "gpt" else 0
    step_tmp = _step_transient(spec, max(numels), compiled_step)
    backward = acts + head_grad + max(loss_tmp, recompute)
    end = grads + max(step_tmp, recompute)
    transient = max(backward, end) - (acts if backward >= end else grads)
    peak = params + opt + max(backward, end)
    return Prediction(plan.name, int(peak), params, grads, opt, acts, int(transient),
                      round(relative_speed(shape, plan, device, sum(numels), _offloaded(shape, prof, ckpt, device)), 3),
                      needs_cuda=spec.needs_cuda)


def _activations(shape: ModelShape, prof, ckpt, device: str) -> tuple[int, int]:
    """(saved activation bytes, the transient of recomputing one block in backward)."""
    if ckpt.kind == "offload":
        return (prof.rest, 0) if device == "cuda" else (prof.rest + shape.layers * prof.block, 0)
    if ckpt.kind == "ops":
        return prof.rest + shape.layers * prof.block_ops, prof.block
    wrapped = sum(ckpt.wraps(i) for i in range(shape.layers))
    saved = prof.rest + wrapped * prof.block_input + (shape.layers - wrapped) * prof.block
    return saved, (prof.block if wrapped else 0)


def _offloaded(shape: ModelShape, prof, ckpt, device: str) -> int:
    return shape.layers * prof.block if ckpt.kind == "offload" and device == "cuda" else 0


def _step_transient(spec, largest: int, compiled: bool) -> int:
    """Temporaries of the optimizer step: torchao updates one tensor at a time (dequantize, update, requantize);
    eager that costs ``spec.eager_tmp`` × its fp32 size (measured on CPU), compiled about 2× (fused kernel)."""
    if spec.bits == 0:
        return 0
    return int(largest * 4 * (2 if compiled else spec.eager_tmp))


def relative_speed(shape: ModelShape, plan: Plan, device: str, n_params: int, offloaded_bytes: int = 0) -> float:
    """Predicted tokens/s of ``plan`` divided by tokens/s of fp32 + AdamW, same shape and device.

    Activation offload costs its bytes twice over the host link (out in forward, back in backward), not hidden
    behind compute."""
    pri = SPEED_PRIORS["cuda" if device == "cuda" else "cpu"]
    flops = 6 * n_params * shape.tokens + 12 * shape.layers * shape.seq * shape.d_model * shape.tokens
    base = pri["fp32_ms_per_ref_step"] * flops / _REF_FLOPS
    opt_base = pri["opt_ms_per_368m"]["adamw"] * n_params / 368e6
    prec = get_precision(plan.precision)
    ckpt = checkpointing.parse(plan.checkpointing)
    compute = base * (pri["pure_bf16"] if plan.precision == "pure_bf16" else
                      pri["autocast"] if prec.autocast_dtype is not None else 1.0)
    wrapped = sum(ckpt.wraps(i) for i in range(shape.layers)) / max(shape.layers, 1)
    compute *= 1 + (pri["ops_recompute"] if ckpt.kind == "ops" else pri["recompute"] * wrapped)
    compute *= pri["compile"] if plan.compile else 1.0
    compute += 2 * offloaded_bytes / pri["host_link_bytes_per_s"] * 1000
    opt_name = "adamw_bf16_sr" if plan.optimizer == "adamw" and plan.precision == "pure_bf16" else plan.optimizer
    opt_time = pri["opt_ms_per_368m"][opt_name] * n_params / 368e6
    return (base + opt_base) / (compute + opt_time)


def all_plans(device: str = "cuda", compile_options: Optional[tuple] = None) -> list[Plan]:
    """Every combination the planner considers on ``device`` (CUDA-only optimizers, activation offload and
    ``torch.compile`` only for cuda)."""
    compile_options = compile_options or ((False, True) if device == "cuda" else (False,))
    ckpts = ["none", "every:2", "ops", "full", "offload"]
    plans = []
    for prec, ck, opt, comp in itertools.product(PRECISIONS, ckpts, optimizers.OPTIMIZERS, compile_options):
        if optimizers.OPTIMIZERS[opt].needs_cuda and device != "cuda":
            continue
        if ck == "offload" and device != "cuda":
            continue
        plans.append(Plan(prec, ck, opt, comp))
    return plans


@dataclass
class PlanChoice:
    """The ranking under a budget: ``chosen`` is the fastest predicted plan that fits (None: nothing fits)."""

    budget_bytes: Optional[int]
    device: str
    chosen: Optional[Prediction]
    candidates: list = field(default_factory=list)

    def fitting(self) -> list[Prediction]:
        return [c for c in self.candidates if c.fits]

    def render(self) -> str:
        from pipeline_opt.output import render_table

        budget = f"{self.budget_bytes / 2**30:.2f} GiB" if self.budget_bytes is not None else "none"
        head = f"budget {budget} on {self.device}: {self.chosen.plan if self.chosen else 'no plan fits'}"
        rows = [{"plan": c.plan, "peak_gib": round(c.peak_gib, 3), "speed_x": c.relative_speed, "fits": c.fits}
                for c in self.candidates[:25]]
        return head + "\n" + render_table(rows)


def choose(shape: ModelShape, budget_bytes: Optional[int], device: str = "cuda",
           plans: Optional[list[Plan]] = None) -> PlanChoice:
    """Rank ``plans`` (default: all for the device) by predicted speed; pick the fastest that fits."""
    preds = [predict(shape, p, device) for p in (plans or all_plans(device))]
    for p in preds:
        p.fits = budget_bytes is None or p.peak_bytes <= budget_bytes
    preds.sort(key=lambda p: (not p.fits, -p.relative_speed, _fidelity(p.plan), p.peak_bytes))
    chosen = preds[0] if preds and preds[0].fits else None
    return PlanChoice(budget_bytes, device, chosen, preds)


_PRECISION_RANK = {"fp32": 0, "bf16": 1, "fp16": 2, "pure_bf16": 3}


def _fidelity(plan_name: str) -> int:
    """Numerical compromise of a plan (0 = none): at equal speed the planner keeps more precision. Checkpointing
    and offload never change results, so they do not count."""
    plan = Plan.parse(plan_name)
    bits = optimizers.get_spec(plan.optimizer).bits
    return _PRECISION_RANK[plan.precision] + {0: 0, 8: 1, 4: 2}[bits]


def ladder(choice: PlanChoice) -> list[Plan]:
    """The chosen plan, then repeatedly the fastest fitting plan predicted smaller than the one before: the order
    in which the trainer steps down after an out-of-memory error."""
    chain: list[Prediction] = [choice.chosen] if choice.chosen else []
    while chain:
        smaller = [c for c in choice.fitting() if c.peak_bytes < chain[-1].peak_bytes]
        if not smaller:
            break
        chain.append(smaller[0])
    return [Plan.parse(c.plan) for c in chain]


def find_batch_size(shape: ModelShape, plan: Plan, budget_bytes: int, device: str = "cuda",
                    max_batch: int = 1 << 16, probe=None) -> int:
    """Largest micro-batch whose predicted peak fits; with ``probe(batch) -> bool`` (a measured run), the
    prediction is corrected by measuring around it, so the answer is the largest batch that really fits."""
    fits = probe or (lambda b: predict(shape.with_batch(b), plan, device).peak_bytes <= budget_bytes)
    guess = _largest(lambda b: predict(shape.with_batch(b), plan, device).peak_bytes <= budget_bytes, max_batch)
    if probe is None:
        return guess
    b = max(guess, 1)
    if fits(b):
        while b < max_batch and fits(b + 1):
            b += 1
        return b
    while b > 1 and not fits(b - 1):
        b -= 1
    return b - 1


def _largest(fits, max_batch: int) -> int:
    lo, hi = 0, 1
    while hi <= max_batch and fits(hi):
        lo, hi = hi, hi * 2
    hi = min(hi, max_batch + 1)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo
