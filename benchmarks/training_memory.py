"""Training memory benchmark: peak memory and tokens/s of every plan, as ratios to fp32 + AdamW of the same run.

GPU (default): the anchor's reference GPT (d_model 1024, 24 layers, 16 heads, vocab 32000, seq 1024, batch 8) on one
CUDA device; each plan's measured peak (allocator and driver) next to the planner's prediction; loss curves; the
planner's choice under 0.25×, 0.42× and 0.76× of the measured fp32 peak. ``--small``: a CPU-sized GPT, CPU plans,
peaks from torch's profiler allocation events. The JSON is rewritten after every plan, so a failing or slow plan
never loses the others; a deadline (default 7.5 min) skips what is left and says so.

    python benchmarks/training_memory.py [--small] [--out PATH] [--deadline-s 450] [--anchor PATH]
"""
from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

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


def measure(shape: ModelShape, plan: Plan, device: str, warm: int, steps: int, small: bool) -> dict:
    """Train ``warm + steps`` steps on one fixed random batch; the last warm step is measured for memory."""
    torch.manual_seed(0)
    model = shape.build()
    trainer = Trainer(model, [plan], lr=1e-4, device=device, compile_step=not small, measure_every=0)
    batch = {"tokens": torch.randint(0, shape.vocab, (shape.batch, shape.seq),
                                     generator=torch.Generator().manual_seed(0))}
    losses, times = [], []
    for i in range(warm + steps):
        trainer.measure_every = 1 if i == warm - 1 else 0  # memory of a steady-state step (state exists)
        t0 = time.perf_counter()
        losses.append(trainer.train_step(batch))
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    mem = trainer.memory[-1]
    step_s = statistics.median(times[warm:])
    pred = predict(shape, plan, device)
    del trainer, model
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    gib = lambda b: None if b is None else round(b / 2**30, 6)  # noqa: E731
    return {"plan": plan.name, "peak_gib": gib(mem["peak"]), "device_gib": gib(mem["device_peak"]),
            "predicted_gib": gib(pred.peak_bytes), "prediction_error": round(pred.peak_bytes / mem["peak"] - 1, 4),
            "predicted_speed_x": pred.relative_speed, "step_s": round(step_s, 4),
            "tokens_per_s": round(shape.tokens / step_s), "losses": [round(x, 4) for x in losses],
            "breakdown_gib": {k: gib(mem[k]) for k in ("params", "grads", "optimizer_state", "activations")}}


def run(small: bool, out: Path, deadline_s: float, anchor: str | None) -> dict:
    device = "cpu" if small else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --small for the CPU variant (the GPU run is owed)")
    shape = SMALL_SHAPE if small else GPU_SHAPE
    warm, steps = (2, 3) if small else (3, 8)
    names = list(SMALL_PLANS if small else GPU_PLANS)
    device_name = torch.cuda.get_device_name() if device == "cuda" else f"cpu ({platform.processor() or 'x86_64'})"
    result = {"device": device_name, "torch": torch.__version__, "small": small, "shape": shape.__dict__,
              "warm_steps": warm, "timed_steps": steps, "plans": [], "failed": [], "skipped": []}
    start = time.monotonic()
    planned = choose(shape, None, device)
    fp32_pred = next(p for p in planned.candidates if p.plan == "fp32+none+adamw").peak_bytes
    for frac in GOAL_FRACTIONS:  # also measure what the planner picks under each goal budget, right after fp32
        pick = choose(shape, int(frac * fp32_pred), device).chosen
        if pick and pick.plan not in names:
            names.insert(1, pick.plan)
    for name in names:
        if time.monotonic() - start > deadline_s:
            result["skipped"].append(name)
            continue
        try:
            result["plans"].append(measure(shape, Plan.parse(name), device, warm, steps, small))
        except Exception as e:  # one failing plan must not lose the others
            result["failed"].append({"plan": name, "error": f"{type(e).__name__}: {str(e)[:300]}"})
            gc.collect()
        _ratios(result)
        _write(out, result)
    base = next((p for p in result["plans"] if p["plan"] == "fp32+none+adamw"), None)
    measured = {p["plan"] for p in result["plans"]}
    for frac in GOAL_FRACTIONS if base else ():  # the budgets are fractions of the *measured* fp32 peak
        pick = choose(shape, int(frac * base["peak_gib"] * 2**30), device).chosen
        if pick and pick.plan not in measured and time.monotonic() - start <= deadline_s:
            measured.add(pick.plan)
            try:
                result["plans"].append(measure(shape, Plan.parse(pick.plan), device, warm, steps, small))
            except Exception as e:
                result["failed"].append({"plan": pick.plan, "error": f"{type(e).__name__}: {str(e)[:300]}"})
    _ratios(result)
    _goals(result, shape, device)
    if anchor and device == "cuda":
        result["anchor"] = _run_anchor(anchor, max(deadline_s + 60 - (time.monotonic() - start), 60))
    result["elapsed_s"] = round(time.monotonic() - start, 1)
    _write(out, result)
    return result


def _ratios(result: dict) -> None:
    base = next((p for p in result["plans"] if p["plan"] == "fp32+none+adamw"), None)
    for p in result["plans"]:
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
        pick = choose(shape, int(frac * base["peak_gib"] * 2**30), device).chosen
        m = measured.get(pick.plan) if pick else None
        result["goals"].append({"budget_x": frac, "goal_speed_x": goal, "chosen": pick.plan if pick else None,
                                "measured_memory_x": m and m.get("memory_x"),
                                "measured_speed_x": m and m.get("speed_x"),
                                "met": bool(m and m["memory_x"] <= frac and m["speed_x"] >= goal)})
    errors = [abs(p["prediction_error"]) for p in result["plans"]]
    result["max_prediction_error"] = round(max(errors), 4) if errors else None


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
    ap.add_argument("--small", action="store_true", help="CPU-sized model and plans")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/training_memory[_small].json)")
    ap.add_argument("--deadline-s", type=float, default=450.0)
    ap.add_argument("--anchor", default=None, help="path of the anchor script to run in the same GPU session")
    args = ap.parse_args(argv)
    default = f"benchmarks/results/training_memory{'_small' if args.small else ''}.json"
    result = run(args.small, Path(args.out or default), args.deadline_s, args.anchor)
    for p in result["plans"]:
        print(f"{p['plan']:36s} peak {p['peak_gib']:.4f} GiB (pred {p['predicted_gib']:.4f}, "
              f"{p['prediction_error']:+.1%})  {p.get('memory_x')}× mem  {p.get('speed_x')}× speed")
    for f in result["failed"]:
        print(f"{f['plan']:36s} FAILED {f['error']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
