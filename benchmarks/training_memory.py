"""Training memory benchmark: each plan's measured peak (allocated and, on CUDA, reserved) beside the planner's
prediction, tokens/s as ratios to fp32 + AdamW of the same run, the planner's pick under budgets, and the loss over
``--divergence-steps`` steps of each pick against fp32.

GPU (default): the anchor's reference GPT (d_model 1024, 24 layers, 16 heads, vocab 32000, seq 1024, batch 8) on one
CUDA device; predictions both in closed form (what ``memory-plan`` answers) and tracing all 24 blocks. ``--small``:
a CPU-sized GPT, CPU plans, peaks from torch's profiler allocation events (reserved memory cannot be measured on a
CPU: it has no caching allocator). ``--dry-run``: the GPU code path on the CPU with a tiny model and few steps, to
check the script before a GPU session. The JSON is rewritten after every plan, so a failing or slow plan never
loses the others; a deadline skips what is left and says so. A pick at a micro-batch below the batch is measured
as ``PLAN@MICRO``, accumulating the rest, as the planner would run it.

    python benchmarks/training_memory.py [--small | --dry-run] [--out PATH] [--deadline-s 170]
        [--divergence-steps 200] [--total-deadline-s 600] [--anchor PATH --anchor-timeout-s 100]
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import torch

from pipeline_opt.training import predict as predict_module
from pipeline_opt.training import profile
from pipeline_opt.training.loop import Trainer
from pipeline_opt.training.planner import Plan, choose, predict
from pipeline_opt.training.shapes import ModelShape

GPU_SHAPE = ModelShape("gpt", 24, 1024, 16, 32000, 1024, 8)
SMALL_SHAPE = ModelShape("gpt", 2, 64, 4, 512, 64, 4)
# Most telling first (the deadline skips from the end): baseline, the anchor's frontier, then the rest.
GPU_PLANS = ["fp32+none+adamw", "bf16+none+adamw", "bf16+none+adamw+compile", "bf16+full+adamw+compile",
             "pure_bf16+full+bnb8bit", "bf16+full+adamw", "fp16+none+adamw", "bf16+every:2+adamw", "bf16+ops+adamw",
             "bf16+offload+adamw", "bf16+full+adamw8bit", "bf16+full+adamw4bit", "bf16+full+adamwfp8",
             "bf16+full+bnb8bit", "bf16+full+bnb_paged8bit", "bf16+full+cpu_offload", "pure_bf16+full+adamw",
             "pure_bf16+full+adamw8bit+compile"]
SMALL_PLANS = ["fp32+none+adamw", "bf16+none+adamw", "fp16+none+adamw", "pure_bf16+none+adamw",
               "bf16+full+adamw", "bf16+every:2+adamw", "bf16+ops+adamw", "bf16+full+adamw8bit",
               "bf16+full+adamw4bit", "bf16+full+adamwfp8"]
GOAL_FRACTIONS = {0.25: 6.0, 0.42: 8.0, 0.76: 9.5}


def _gib(b):
    return None if b is None else round(b / 2**30, 6)


def label(name: str) -> tuple[Plan, Optional[int]]:
    """``PLAN`` or ``PLAN@MICRO`` (a planner's pick at a micro-batch below the batch, the rest accumulated)."""
    plan, _, micro = name.partition("@")
    return Plan.parse(plan), int(micro) if micro else None


def measure(shape: ModelShape, plan: Plan, device: str, warm: int, steps: int, eager_step: bool,
            micro: Optional[int] = None) -> dict:
    """Train ``warm + steps`` steps on one fixed random batch; the last warm step is measured for memory."""
    torch.manual_seed(0)
    model = shape.build()
    trainer = Trainer(model, [plan], lr=1e-4, device=device, compile_step=not eager_step, measure_every=0,
                      micro_batch=micro)
    batch = {"tokens": torch.randint(0, shape.vocab, (shape.batch, shape.seq),
                                     generator=torch.Generator().manual_seed(0))}
    losses, times, reserved = [], [], None
    for i in range(warm + steps):
        trainer.measure_every = 1 if i == warm - 1 else 0  # memory of a steady-state step (state exists)
        t0 = time.perf_counter()
        losses.append(trainer.train_step(batch))
        if device == "cuda":
            torch.cuda.synchronize()
            if i == warm - 1:
                reserved = torch.cuda.max_memory_reserved()
        times.append(time.perf_counter() - t0)
    mem = trainer.memory[-1]
    step_s = statistics.median(times[warm:])
    del trainer, model
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    return {"plan": plan.name, "peak_bytes": mem["peak"], "peak_gib": _gib(mem["peak"]), "reserved_gib": _gib(reserved),
            "device_gib": _gib(mem["device_peak"]), "step_s": round(step_s, 4),
            "tokens_per_s": round(shape.tokens / step_s), "losses": [round(x, 4) for x in losses],
            "breakdown_gib": {k: _gib(mem[k]) for k in ("params", "grads", "optimizer_state", "activations")}}


def predicted(shape: ModelShape, plan: Plan, device: str, eager_step: bool, micro: Optional[int] = None) -> dict:
    pred = predict(shape, plan, device, compiled_step=not eager_step, micro_batch=micro)
    return {"predicted_gib": _gib(pred.peak_bytes), "predicted_reserved_gib": _gib(pred.reserved_bytes),
            "predicted_speed_x": pred.relative_speed}


ERRORS = {"prediction_error": ("predicted_gib", "peak_gib"),
          "reserved_error": ("predicted_reserved_gib", "reserved_gib"),
          "exact_error": ("exact_gib", "peak_gib"), "exact_reserved_error": ("exact_reserved_gib", "reserved_gib")}


def _errors(p: dict) -> None:
    for name, (key, meas) in ERRORS.items():
        if p.get(key) is not None and p.get(meas):
            p[name] = round(p[key] / p[meas] - 1, 4)


def run(mode: str, out: Path, deadline_s: float, anchor: str | None, anchor_timeout_s: float,
        divergence_steps: int, total_deadline_s: float) -> dict:
    small, dry = mode == "small", mode == "dry-run"
    device = "cpu" if small or dry else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --small for the CPU variant, --dry-run to check the script")
    shape = GPU_SHAPE if mode == "gpu" else SMALL_SHAPE
    warm, steps = (2, 3) if device == "cpu" else (3, 8)
    names = list(SMALL_PLANS if small else GPU_PLANS)
    if dry:
        names = [n for n in names if _runs_on_cpu(n)][:2]
    device_name = torch.cuda.get_device_name() if device == "cuda" else f"cpu ({platform.processor() or 'x86_64'})"
    result = {"device": device_name, "torch": torch.__version__, "mode": mode, "small": small,
              "shape": shape.__dict__, "warm_steps": warm, "timed_steps": steps, "plans": [], "failed": [],
              "skipped": []}
    start = time.monotonic()
    plan_device = "cpu" if small else "cuda"  # the dry run plans for CUDA (allocator model) while running on CPU
    names = _with_goal_picks(shape, names, plan_device, cpu_only=device == "cpu")
    if anchor and device == "cuda":  # first: the anchor's own numbers never depend on our deadline
        result["anchor"] = _run_anchor(anchor, anchor_timeout_s)
        _write(out, result)
    plans_start = time.monotonic()
    for name in names:
        if time.monotonic() - plans_start > deadline_s:
            result["skipped"].append(name)
            continue
        try:
            plan, micro = label(name)
            row = {**measure(shape, plan, device, warm, steps, device == "cpu", micro), "plan": name,
                   "micro_batch": micro or shape.batch}
            row.update(predicted(shape, plan, plan_device, device == "cpu", micro))
            result["plans"].append(row)
        except Exception as e:  # one failing plan must not lose the others
            result["failed"].append({"plan": name, "error": f"{type(e).__name__}: {str(e)[:300]}"})
            gc.collect()
        _ratios(result)
        _write(out, result)
    _exact_predictions(result, shape, plan_device, device == "cpu")
    _ratios(result)
    _goals(result, shape, plan_device)
    if divergence_steps:
        until = start + total_deadline_s
        result["divergence"] = _divergence(result, shape, device, divergence_steps, device == "cpu", until)
    result["elapsed_s"] = round(time.monotonic() - start, 1)
    _write(out, result)
    return result


def _runs_on_cpu(name: str) -> bool:
    plan, _ = label(name)
    from pipeline_opt.training import optimizers

    return not (plan.compile or plan.checkpointing == "offload" or optimizers.get_spec(plan.optimizer).needs_cuda)


def _with_goal_picks(shape: ModelShape, names: list, device: str, cpu_only: bool) -> list:
    """The plans to measure plus what the planner picks under each goal budget (fractions of fp32's predicted
    peak), measured right after fp32."""
    fp32 = predict(shape, Plan(), device).peak_bytes
    for frac in GOAL_FRACTIONS:
        pick = choose(shape, int(frac * fp32), device).chosen
        name = _pick_label(pick, shape) if pick else None
        if name and name not in names and (not cpu_only or _runs_on_cpu(name)):
            names.insert(1, name)
    return names


def _pick_label(pick, shape: ModelShape) -> str:
    return pick.plan if pick.micro_batch == shape.batch else f"{pick.plan}@{pick.micro_batch}"


def _exact_predictions(result: dict, shape: ModelShape, device: str, eager_step: bool) -> None:
    """The same predictions tracing every block (no closed-form extension): how much the closed form gives up."""
    saved = profile.MAX_TRACED_BLOCKS
    profile.MAX_TRACED_BLOCKS = 1 << 12
    predict_module._PROFILES.clear()
    try:
        for p in result["plans"]:
            plan, micro = label(p["plan"])
            pred = predict(shape, plan, device, compiled_step=not eager_step, micro_batch=micro)
            p["exact_gib"], p["exact_reserved_gib"] = _gib(pred.peak_bytes), _gib(pred.reserved_bytes)
            _errors(p)
    finally:
        profile.MAX_TRACED_BLOCKS = saved
        predict_module._PROFILES.clear()


def _ratios(result: dict) -> None:
    base = next((p for p in result["plans"] if p["plan"] == "fp32+none+adamw"), None)
    for p in result["plans"]:
        _errors(p)
        if base:
            p["memory_x"] = round(p["peak_gib"] / base["peak_gib"], 3)
            p["speed_x"] = round(p["tokens_per_s"] / base["tokens_per_s"], 3)
            p["loss_delta_vs_fp32"] = round(p["losses"][-1] - base["losses"][-1], 4)


def _goals(result: dict, shape: ModelShape, device: str) -> None:
    base = next((p for p in result["plans"] if p["plan"] == "fp32+none+adamw"), None)
    if not base:
        return
    measured = {p["plan"]: p for p in result["plans"]}
    result["goals"] = []
    for frac, goal in GOAL_FRACTIONS.items():
        pick = choose(shape, int(frac * base["peak_bytes"]), device).chosen  # of the *measured* fp32 peak, unrounded
        m = measured.get(_pick_label(pick, shape)) if pick else None
        result["goals"].append({"budget_x": frac, "goal_speed_x": goal,
                                "chosen": _pick_label(pick, shape) if pick else None,
                                "micro_batch": pick.micro_batch if pick else None,
                                "measured_memory_x": m and m.get("memory_x"),
                                "measured_speed_x": m and m.get("speed_x"),
                                "met": bool(m and m["memory_x"] <= frac and m["speed_x"] >= goal)})
    for key in ERRORS:
        errors = [abs(p[key]) for p in result["plans"] if p.get(key) is not None]
        result[f"max_{key}"] = round(max(errors), 4) if errors else None


def _divergence(result: dict, shape: ModelShape, device: str, steps: int, eager_step: bool, until: float) -> dict:
    """fp32 and each goal pick trained ``steps`` steps on the same stream of batches (a pick's ``+compile`` left
    out: compiling changes no precision, and a second compile would cost the time the curve needs): final losses
    and whether a pick diverged (non-finite, or its last-10 mean above fp32's by more than 10 % of fp32's first
    loss). A curve stops at the total deadline and says how far it got."""
    picks = ["fp32+none+adamw"] + [g["chosen"].replace("+compile", "") for g in result.get("goals", [])
                                   if g["chosen"] and (device == "cuda" or _runs_on_cpu(g["chosen"]))]
    curves = {}
    for name in dict.fromkeys(picks):
        try:
            curves[name] = _curve(shape, *label(name), device, steps, eager_step, until)
        except Exception as e:
            curves[name] = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
    ref = curves.get("fp32+none+adamw", {}).get("losses")
    for name, c in curves.items():
        if ref and c.get("losses"):
            n = min(len(ref), len(c["losses"]))
            lo = max(n - 10, 0)
            tail, ref_tail = statistics.mean(c["losses"][lo:n]), statistics.mean(ref[lo:n])
            c["diverged"] = not all(math.isfinite(x) for x in c["losses"]) or tail - ref_tail > 0.1 * ref[0]
            c["final_delta_vs_fp32"] = round(tail - ref_tail, 4)
            c["compared_steps"] = n
        if c.get("losses"):
            c["losses"] = c["losses"][:: max(len(c["losses"]) // 40, 1)]  # the curve, thinned for the JSON
    return {"steps": steps, "curves": curves}


def _curve(shape: ModelShape, plan: Plan, micro: Optional[int], device: str, steps: int, eager_step: bool,
           until: float) -> dict:
    torch.manual_seed(0)
    trainer = Trainer(shape.build(), [plan], lr=3e-4, device=device, compile_step=not eager_step, micro_batch=micro)
    g = torch.Generator().manual_seed(1)
    data = [torch.randint(0, shape.vocab, (shape.batch, shape.seq), generator=g) for _ in range(4)]
    losses = []
    for i in range(steps):
        if time.monotonic() > until:
            break
        losses.append(trainer.train_step({"tokens": data[i % len(data)]}))
    del trainer
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    return {"losses": [round(x, 4) for x in losses]}


def _run_anchor(path: str, timeout_s: float) -> dict:
    try:
        done = subprocess.run([sys.executable, path], capture_output=True, text=True, timeout=timeout_s)
        return {"lines": [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")], "rc": done.returncode}
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return {"lines": [json.loads(x) for x in out.splitlines() if x.startswith("{")], "timed_out": True}


def _write(out: Path, result: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--small", action="store_true", help="CPU-sized model and plans")
    group.add_argument("--dry-run", action="store_true", help="the GPU code path on the CPU, tiny and short")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/training_memory[_small].json)")
    ap.add_argument("--deadline-s", type=float, default=170.0, help="stop starting new plans after this long")
    ap.add_argument("--divergence-steps", type=int, default=None, help="steps of fp32 and each pick (GPU: 200)")
    ap.add_argument("--anchor", default=None, help="path of the anchor script to run in the same GPU session")
    ap.add_argument("--anchor-timeout-s", type=float, default=100.0)
    ap.add_argument("--total-deadline-s", type=float, default=600.0, help="the loss curves stop here")
    args = ap.parse_args(argv)
    mode = "small" if args.small else "dry-run" if args.dry_run else "gpu"
    default = {"small": "training_memory_small", "dry-run": "training_memory_dryrun", "gpu": "training_memory"}[mode]
    steps = args.divergence_steps if args.divergence_steps is not None else {"gpu": 200, "dry-run": 6}.get(mode, 0)
    result = run(mode, Path(args.out or f"benchmarks/results/{default}.json"), args.deadline_s, args.anchor,
                 args.anchor_timeout_s, steps, args.total_deadline_s)
    for p in result["plans"]:
        reserved = f", reserved {p['reserved_gib']} (pred {p['predicted_reserved_gib']})" if p["reserved_gib"] else ""
        print(f"{p['plan']:36s} peak {p['peak_gib']:.4f} GiB (pred {p['predicted_gib']:.4f}, "
              f"{p.get('prediction_error', 0):+.1%}){reserved}  {p.get('memory_x')}× mem  {p.get('speed_x')}× speed")
    for f in result["failed"]:
        print(f"{f['plan']:36s} FAILED {f['error']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
