"""Predicted speed of a plan relative to fp32 + AdamW on the same model, batch and device.

Invariants: compute time scales with the step's FLOPs (counted on the fake trace) at the device's fp32 rate,
divided by a precision factor, times a recompute overhead and a compile factor; activation offload adds its bytes
twice over the host link; accumulation adds a fixed cost per micro-step; FSDP2 adds two all-gathers and one
reduce-scatter of the parameters per step (plus, offloaded, their copies over the host link) and runs the optimizer
on 1/ranks of them. The coefficients are priors (``SPEED_PRIORS``) that a benchmark run replaces with measurements.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict


class SpeedPriors(TypedDict):
    """One device's coefficients: step-time factors, links, optimizer step times, the fp32 reference."""

    autocast: float
    pure_bf16: float
    compile: float
    recompute: float
    ops_recompute: float
    host_link_bytes_per_s: float
    peer_link_bytes_per_s: float
    micro_step_ms: float
    opt_ms_per_368m: dict[str, float]
    fp32_ms_per_ref_step: float


# GPU values are priors from the anchor run on one H200 (bf16 autocast 6.75×, compile 1.24× on top, full recompute
# 1.39× time, optimizer step costs per 368 M params); torchao's bf16 AdamW, the host and peer links and the
# micro-step cost are guesses. CPU: no tensor cores, bf16 matmuls run at about fp32 speed.
SPEED_PRIORS: dict[str, SpeedPriors] = {
    "cuda": {"autocast": 1 / 6.75, "pure_bf16": 1 / 7.0, "compile": 0.80, "recompute": 0.39, "ops_recompute": 0.12,
             "host_link_bytes_per_s": 25e9, "peer_link_bytes_per_s": 200e9, "micro_step_ms": 3.0,
             "opt_ms_per_368m": {"adamw": 5, "adamw_bf16_sr": 100, "adamw8bit": 200, "adamw4bit": 200,
                                 "adamwfp8": 200, "bnb8bit": 66, "bnb_paged8bit": 70, "cpu_offload": 176},
             "fp32_ms_per_ref_step": 401.0},
    "cpu": {"autocast": 1.0, "pure_bf16": 1.0, "compile": 0.9, "recompute": 0.33, "ops_recompute": 0.12,
            "host_link_bytes_per_s": 1e12, "peer_link_bytes_per_s": 5e9, "micro_step_ms": 0.5,
            "opt_ms_per_368m": {"adamw": 2000, "adamw_bf16_sr": 8000, "adamw8bit": 8000, "adamw4bit": 8000,
                                "adamwfp8": 8000, "bnb8bit": 4000, "bnb_paged8bit": 4000, "cpu_offload": 2000},
            "fp32_ms_per_ref_step": 400_000.0},
}
REF_FLOPS = 6 * 368e6 * 8192 + 12 * 24 * 1024 * 1024 * 8192  # the anchor's step: 368 M params, 8 × 1024 tokens


@dataclass(frozen=True)
class StepWork:
    """What one step of a plan does: FLOPs of forward + backward over the rank's batch, parameters, the share of
    blocks recomputed, activation bytes offloaded, micro-steps, ranks the parameters are sharded over."""

    flops: float
    params: int
    param_bytes: int
    recomputed: float = 0.0
    offloaded_bytes: int = 0
    accumulation: int = 1
    shards: int = 1
    offload_params: bool = False


def relative_speed(work: StepWork, precision: str, autocast: bool, ckpt_kind: str, compiled: bool,
                   optimizer: str, device: str) -> float:
    """Predicted tokens/s of the plan ÷ tokens/s of fp32 + AdamW, unsharded, one micro-step."""
    pri = SPEED_PRIORS["cuda" if device == "cuda" else "cpu"]
    base = pri["fp32_ms_per_ref_step"] * work.flops / REF_FLOPS
    opt_base = pri["opt_ms_per_368m"]["adamw"] * work.params / 368e6
    compute = base * (pri["pure_bf16"] if precision == "pure_bf16" else pri["autocast"] if autocast else 1.0)
    compute *= 1 + (pri["ops_recompute"] if ckpt_kind == "ops" else pri["recompute"] * work.recomputed)
    compute *= pri["compile"] if compiled else 1.0
    compute += 2 * work.offloaded_bytes / pri["host_link_bytes_per_s"] * 1000
    compute += (work.accumulation - 1) * pri["micro_step_ms"]
    opt_name = "adamw_bf16_sr" if optimizer == "adamw" and precision == "pure_bf16" else optimizer
    opt_time = pri["opt_ms_per_368m"][opt_name] * work.params / 368e6 / work.shards
    if work.shards > 1:
        moved = 3 * work.params * work.param_bytes * (work.shards - 1) / work.shards
        compute += moved / pri["peer_link_bytes_per_s"] * 1000
        if work.offload_params:
            compute += 3 * work.params * work.param_bytes / work.shards / pri["host_link_bytes_per_s"] * 1000
    return (base + opt_base) / (compute + opt_time)
