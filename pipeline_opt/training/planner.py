"""The planner: every plan's predicted memory and speed, the micro-batch each can run, the fastest that fits.

Invariants: ``choose`` never returns a plan predicted over budget (on CUDA: its reserved memory, not only the
allocated peak); with a budget each plan runs at the largest micro-batch (a divisor of the rows per rank and step,
the rest accumulated) predicted to fit, so a smaller micro-batch is tried before any change of precision,
checkpointing or optimizer; plans are ranked by predicted
speed, ties broken by less numerical compromise, then lower memory. Plans unsafe for the model (``safety``) are
listed with the reason and never chosen. Speeds are relative to fp32 + AdamW on the same device (``speed``).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Callable, Optional

from pipeline_opt.training import TrainingError, optimizers
from pipeline_opt.training.plan import Plan
from pipeline_opt.training.precision import PRECISIONS
from pipeline_opt.training.predict import Prediction, predict_workload, profile_of
from pipeline_opt.training.safety import refusal
from pipeline_opt.training.shapes import as_workload
from pipeline_opt.training.speed import SPEED_PRIORS

__all__ = ["Plan", "Prediction", "PlanChoice", "SPEED_PRIORS", "all_plans", "choose", "find_batch_size", "ladder",
           "predict", "shortfall"]


def predict(target, plan: Plan, device: str = "cuda", compiled_step: Optional[bool] = None, *,
            micro_batch: Optional[int] = None, ranks: int = 1) -> Prediction:
    """Predicted peak memory and relative speed of ``plan`` for ``target`` (a ``ModelShape`` or ``Workload``)."""
    return predict_workload(as_workload(target), plan, device, micro_batch=micro_batch, ranks=ranks,
                            compiled_step=compiled_step)


def all_plans(device: str = "cuda", compile_options: Optional[tuple] = None, ranks: int = 1) -> list[Plan]:
    """Every combination the planner considers on ``device`` (CUDA-only optimizers, activation offload and
    ``torch.compile`` only for cuda; with ``ranks`` > 1 replicated or FSDP2-sharded, the latter not with pure bf16
    weights)."""
    compile_options = compile_options or ((False, True) if device == "cuda" else (False,))
    ckpts = ["none", "every:2", "ops", "full", "offload"]
    shards = ["none"] if ranks == 1 else ["none", "fsdp2"] + (["fsdp2_offload"] if device == "cuda" else [])
    plans = []
    for prec, ck, opt, comp, shard in itertools.product(PRECISIONS, ckpts, optimizers.OPTIMIZERS, compile_options,
                                                        shards):
        if optimizers.OPTIMIZERS[opt].needs_cuda and device != "cuda":
            continue
        if ck == "offload" and device != "cuda" or shard != "none" and prec == "pure_bf16":
            continue
        plans.append(Plan(prec, ck, opt, comp, shard))
    return plans


@dataclass
class PlanChoice:
    """The ranking under a budget: ``chosen`` is the fastest predicted plan that fits (None: nothing fits)."""

    budget_bytes: Optional[int]
    device: str
    chosen: Optional[Prediction]
    candidates: list = field(default_factory=list)
    batch: int = 1
    ranks: int = 1

    def fitting(self) -> list[Prediction]:
        return [c for c in self.candidates if c.fits]

    def render(self) -> str:
        from pipeline_opt.output import render_table

        budget = f"{self.budget_bytes / 2**30:.2f} GiB" if self.budget_bytes is not None else "none"
        c = self.chosen
        verdict = (f"fits: {c.plan} at micro-batch {c.micro_batch} × {c.accumulation} "
                   f"(peak {c.peak_gib:.3f} GiB" + (f", reserved {c.reserved_gib:.3f} GiB" if c.reserved_gib else "")
                   + ")") if c else "does not fit: no plan fits"
        head = (f"budget {budget} per rank on {self.device} ({self.ranks} rank(s), {self.batch} rows/rank/step): "
                f"{verdict}")
        rows = [{"plan": p.plan, "micro": p.micro_batch, "accum": p.accumulation, "peak_gib": round(p.peak_gib, 3),
                 "reserved_gib": None if p.reserved_gib is None else round(p.reserved_gib, 3),
                 "speed_x": p.relative_speed, "fits": p.fits if not p.refused else f"refused: {p.refused}"}
                for p in self.candidates[:25]]
        return head + "\n" + render_table(rows)


def choose(target, budget_bytes: Optional[int], device: str = "cuda", plans: Optional[list[Plan]] = None,
           ranks: int = 1, allow_unsafe: bool = False) -> PlanChoice:
    """Rank ``plans`` (default: all for the device) by predicted speed; pick the fastest that fits."""
    wl = as_workload(target)
    prof = profile_of(wl)
    preds = []
    for plan in plans or all_plans(device, ranks=ranks):
        pred = best_micro(wl, plan, budget_bytes, device, ranks)
        pred.refused = None if allow_unsafe else refusal(plan, prof)
        pred.fits = pred.refused is None and (budget_bytes is None or pred.device_bytes <= budget_bytes)
        preds.append(pred)
    preds.sort(key=lambda p: (not p.fits, -p.relative_speed, _fidelity(p.plan), p.device_bytes))
    chosen = preds[0] if preds and preds[0].fits else None
    return PlanChoice(budget_bytes, device, chosen, preds, wl.batch, ranks)


def best_micro(wl, plan: Plan, budget: Optional[int], device: str, ranks: int) -> Prediction:
    """The prediction at the largest micro-batch dividing the rows per rank that fits (without a budget: all
    rows in one micro-batch; nothing fits: the smallest micro-batch)."""
    sizes = [m for m in range(wl.batch, 0, -1) if wl.batch % m == 0] if budget is not None else [wl.batch]
    pred = None
    for m in sizes:
        pred = predict_workload(wl, plan, device, micro_batch=m, ranks=ranks)
        if budget is None or pred.device_bytes <= budget:
            return pred
    assert pred is not None
    return pred


_PRECISION_RANK = {"fp32": 0, "bf16": 1, "fp16": 2, "pure_bf16": 3}


def _fidelity(plan_name: str) -> int:
    """Numerical compromise of a plan (0 = none): at equal speed the planner keeps more precision. Checkpointing,
    offload, sharding and accumulation never change results, so they do not count."""
    plan = Plan.parse(plan_name)
    bits = optimizers.get_spec(plan.optimizer).bits
    return _PRECISION_RANK[plan.precision] + {0: 0, 8: 1, 4: 2}[bits]


def ladder(choice: PlanChoice) -> list[tuple[Plan, int]]:
    """(plan, micro-batch): the chosen one, then repeatedly the fastest fitting plan predicted smaller than the one
    before — the plans the trainer steps down through once halving the micro-batch no longer helps."""
    chain: list[Prediction] = [choice.chosen] if choice.chosen else []
    while chain:
        smaller = [c for c in choice.fitting() if c.device_bytes < chain[-1].device_bytes]
        if not smaller:
            break
        chain.append(smaller[0])
    return [(Plan.parse(c.plan), c.micro_batch) for c in chain]


def find_batch_size(target, plan: Plan, budget_bytes: int, device: str = "cuda", max_batch: int = 1 << 16,
                    probe: Optional[Callable[[int], bool]] = None) -> int:
    """Largest micro-batch whose predicted peak fits; with ``probe(batch) -> bool`` (a measured run), the
    prediction is corrected by measuring around it, so the answer is the largest batch that really fits."""
    wl = as_workload(target)

    def predicted_fit(b: int) -> bool:
        return predict_workload(wl.with_batch(b), plan, device).device_bytes <= budget_bytes

    guess = _largest(predicted_fit, max_batch)
    if probe is None:
        return guess
    b = max(guess, 1)
    if probe(b):
        while b < max_batch and probe(b + 1):
            b += 1
        return b
    while b > 1 and not probe(b - 1):
        b -= 1
    return b - 1


def _largest(fits: Callable[[int], bool], max_batch: int) -> int:
    lo, hi = 0, 1
    while hi <= max_batch and fits(hi):
        lo, hi = hi, hi * 2
    hi = min(hi, max_batch + 1)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def shortfall(choice: PlanChoice, target) -> str:
    """One line for a budget no plan meets: how much is missing for the smallest plan and which dimension would
    help most — sharding over more ranks (the fewest that fit), FSDP2 CPU offload (CUDA), a smaller micro-batch."""
    from pipeline_opt.units import format_size

    wl = as_workload(target)
    safe = [c for c in choice.candidates if not c.refused] or choice.candidates
    smallest = min(safe, key=lambda c: c.device_bytes)
    budget = choice.budget_bytes or 0
    plan = Plan.parse(smallest.plan)
    base = replace(plan, precision="bf16" if plan.precision == "pure_bf16" else plan.precision)
    options: dict[str, int] = {}
    for ranks in (2, 4, 8, 16, 32, 64):
        if ranks <= choice.ranks:
            continue
        peak = predict_workload(wl, replace(base, shard="fsdp2"), choice.device, micro_batch=smallest.micro_batch,
                                ranks=ranks).device_bytes
        options[f"sharding over {ranks} ranks (FSDP2)"] = peak
        if peak <= budget:
            break
    if choice.device == "cuda":
        options["FSDP2 CPU offload"] = predict_workload(wl, replace(base, shard="fsdp2_offload"), choice.device,
                                                        micro_batch=smallest.micro_batch,
                                                        ranks=max(choice.ranks, 2)).device_bytes
    if smallest.micro_batch > 1:
        options["micro-batch 1"] = predict_workload(wl, plan, choice.device, micro_batch=1,
                                                    ranks=choice.ranks).device_bytes
    fitting = [k for k, v in options.items() if v <= budget]
    best = fitting[0] if fitting else min(options, key=lambda k: options[k]) if options else None
    hint = ""
    if best is not None and options[best] < smallest.device_bytes:
        verdict = "fits" if options[best] <= budget else "comes closest"
        hint = f"; {best} would help most ({verdict}: {format_size(options[best])})"
    need = smallest.device_bytes
    return (f"budget {format_size(budget)} is {format_size(need - budget)} short of the smallest plan "
            f"({smallest.plan} at micro-batch {smallest.micro_batch}: {format_size(need)}){hint}")


def check_budget(choice: PlanChoice, target) -> Prediction:
    """The chosen prediction, or a ``TrainingError`` with ``shortfall``'s line."""
    if choice.chosen is None:
        raise TrainingError(shortfall(choice, target))
    return choice.chosen
