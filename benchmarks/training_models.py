"""Your own model: the example factories' measured peaks beside the planner's predictions, FSDP2's per-rank peak on
2 processes, and the micro-batch the planner picks for a target batch under a budget.

CPU (default): a ResNet of our own, a BERT-style encoder with dropout and its mixture-of-experts form, each at the
sizes below, on plans that run on a CPU; peaks from torch's profiler allocation events; FSDP2 over 2 gloo
processes. ``--device cuda``: the same models on one GPU, allocated (``max_memory_allocated``) and reserved
(``max_memory_reserved``) beside the predictions (FSDP2 needs 2 GPUs and is skipped on one).

    python benchmarks/training_models.py [--device cpu|cuda] [--out PATH] [--deadline-s 300] [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import time
from pathlib import Path

import torch

from pipeline_opt.training.loop import Trainer
from pipeline_opt.training.planner import Plan, choose, predict
from pipeline_opt.training.workload import Workload

MODELS = {
    "resnet": Workload.of("pipeline_opt.training.models.resnet:build", dict(widths=[16, 32, 64], depth=2),
                          ["pixels=float32[16,3,32,32]", "labels=int64[16]<10"]),
    "bert": Workload.of("pipeline_opt.training.models.bert:build",
                        dict(vocab=2048, d_model=128, layers=4, heads=4, max_len=128),
                        ["input_ids=int64[8,64]<2048", "labels=int64[8,64]<2048"], stack_arg="layers"),
    "bert-moe": Workload.of("pipeline_opt.training.models.bert:build",
                            dict(vocab=2048, d_model=128, layers=4, heads=4, max_len=128, experts=4),
                            ["input_ids=int64[8,64]<2048", "labels=int64[8,64]<2048"], stack_arg="layers"),
}
PLANS = ["fp32+none+adamw", "bf16+none+adamw", "bf16+full+adamw", "fp32+every:2+adamw", "bf16+ops+adamw",
         "pure_bf16+none+adamw", "bf16+full+adamw8bit"]
FSDP_PLANS = ["fp32+none+adamw+fsdp2", "bf16+full+adamw+fsdp2", "fp32+none+adamw8bit+fsdp2"]


def _gib(b):
    return None if b is None else round(b / 2**30, 6)


def measure(workload: Workload, plan: Plan, device: str, steps: int = 3) -> dict:
    torch.manual_seed(0)
    model = workload.build()
    trainer = Trainer(model, [plan], device=device, compile_step=device == "cuda", measure_every=1,
                      loss_fn=workload.loss_fn(model))
    batch = workload.make_batch()
    for _ in range(steps):
        trainer.train_step(batch)
    reserved = torch.cuda.max_memory_reserved() if device == "cuda" else None
    mem = trainer.memory[-1]
    pred = predict(workload, plan, device)
    row = {"plan": plan.name, "peak_gib": _gib(mem["peak"]), "predicted_gib": _gib(pred.peak_bytes),
           "prediction_error": round(pred.peak_bytes / mem["peak"] - 1, 4),
           "reserved_gib": _gib(reserved), "predicted_reserved_gib": _gib(pred.reserved_bytes)}
    if reserved:
        row["reserved_error"] = round(pred.reserved_bytes / reserved - 1, 4)
    del trainer, model
    if device == "cuda":
        torch.cuda.empty_cache()
    return row


def _fsdp_rank(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    facts = {}
    for label in ("bert", "resnet"):
        wl = MODELS[label]
        for name in FSDP_PLANS:
            torch.manual_seed(0)
            model = wl.build()
            trainer = Trainer(model, [Plan.parse(name)], device="cpu", compile_step=False, world_size=2, rank=rank,
                              measure_every=1, loss_fn=wl.loss_fn(model))
            batch = wl.make_batch(seed=rank)
            for _ in range(3):
                trainer.train_step(batch)
            facts[f"{label}:{name}"] = trainer.memory[-1]["peak"]
    if rank == 0:
        Path(out).write_text(json.dumps(facts))
    dist.destroy_process_group()


def fsdp_rows(tmp: Path) -> list:
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp / "fsdp_facts.json"
    mp.start_processes(_fsdp_rank, args=(port, str(out)), nprocs=2, start_method="spawn")
    rows = []
    for key, peak in json.loads(out.read_text()).items():
        label, name = key.split(":")
        pred = predict(MODELS[label], Plan.parse(name), "cpu", ranks=2)
        rows.append({"model": label, "plan": name, "ranks": 2, "per_rank_peak_gib": _gib(peak),
                     "predicted_gib": _gib(pred.peak_bytes), "prediction_error": round(pred.peak_bytes / peak - 1, 4),
                     "unsharded_predicted_gib": _gib(predict(MODELS[label], Plan.parse(name.replace("+fsdp2", "")),
                                                             "cpu").peak_bytes)})
    return rows


def micro_batch_rows(device: str) -> list:
    """For each model: the pick under 60 % of fp32's predicted peak at the whole batch."""
    rows = []
    for label, wl in MODELS.items():
        fp32 = predict(wl, Plan(), device).peak_bytes
        pick = choose(wl, int(0.6 * fp32), device).chosen
        rows.append({"model": label, "batch": wl.batch, "budget_x": 0.6, "chosen": pick.plan if pick else None,
                     "micro_batch": pick.micro_batch if pick else None,
                     "accumulation": pick.accumulation if pick else None,
                     "predicted_x": round(pick.peak_bytes / fp32, 3) if pick else None})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--out", default=None)
    ap.add_argument("--deadline-s", type=float, default=300.0)
    ap.add_argument("--quick", action="store_true", help="one plan per model, no FSDP2 (a check of the script)")
    args = ap.parse_args(argv)
    plans = PLANS[:1] if args.quick else PLANS
    out = Path(args.out or f"benchmarks/results/training_models{'_cuda' if args.device == 'cuda' else ''}.json")
    name = torch.cuda.get_device_name() if args.device == "cuda" else f"cpu ({platform.processor() or 'x86_64'})"
    result: dict = {"device": name, "torch": torch.__version__, "models": {}, "failed": [], "skipped": []}
    start = time.monotonic()
    for label, wl in MODELS.items():
        result["models"][label] = {"factory": wl.factory, "args": wl.kwargs, "inputs": [str(i) for i in wl.inputs],
                                   "plans": []}
        for plan in plans:
            if time.monotonic() - start > args.deadline_s:
                result["skipped"].append(f"{label}:{plan}")
                continue
            try:
                result["models"][label]["plans"].append(measure(wl, Plan.parse(plan), args.device))
            except Exception as e:
                result["failed"].append({"model": label, "plan": plan, "error": f"{type(e).__name__}: {e}"[:300]})
    result["micro_batch"] = micro_batch_rows(args.device)
    if args.device == "cpu" and not args.quick:
        result["fsdp2"] = fsdp_rows(out.parent)
        (out.parent / "fsdp_facts.json").unlink(missing_ok=True)
    errors = [abs(p["prediction_error"]) for m in result["models"].values() for p in m["plans"]]
    result["max_prediction_error"] = round(max(errors), 4) if errors else None
    result["elapsed_s"] = round(time.monotonic() - start, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    for label, m in result["models"].items():
        for p in m["plans"]:
            print(f"{label:9s} {p['plan']:24s} peak {p['peak_gib']:.5f} GiB  pred {p['predicted_gib']:.5f}  "
                  f"{p['prediction_error']:+.1%}")
    for r in result.get("fsdp2", []):
        print(f"fsdp2 {r['model']:6s} {r['plan']:28s} per-rank {r['per_rank_peak_gib']:.5f}  pred "
              f"{r['predicted_gib']:.5f}  {r['prediction_error']:+.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
