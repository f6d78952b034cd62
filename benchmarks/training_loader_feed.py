"""The loader feeding a training step: steps/s fed by ``DeltaLoader`` from a Delta table against the same model and
step on a batch already on the device (the ceiling), and the loader's own rows/s — so the share of the device's
time the loader keeps it busy is one ratio from one run.

The table (``--rows`` rows of ``--features`` float32 columns and a target; under benchmarks/work/, gitignored) is
written once with delta-rs; the model is a stack of ``--layers`` residual MLP blocks of width ``--width``.

    python benchmarks/training_loader_feed.py [--device cuda] [--rows 1000000] [--workers 0,4]
        [--batch 8192] [--steps 60] [--out PATH]
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent


class FeedModel(torch.nn.Module):
    def __init__(self, features: int, width: int, layers: int):
        super().__init__()
        self.inp = torch.nn.Linear(features, width)
        self.blocks = torch.nn.ModuleList(torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.GELU())
                                          for _ in range(layers))
        self.out = torch.nn.Linear(width, 1)

    def loss(self, batch: dict) -> torch.Tensor:
        h = self.inp(batch["x"])
        for block in self.blocks:
            h = h + block(h)
        return torch.nn.functional.mse_loss(self.out(h).squeeze(-1).float(), batch["y"])


def write_table(path: Path, rows: int, features: int) -> Path:
    import pyarrow as pa
    from deltalake import write_deltalake

    if (path / "_delta_log").exists():
        return path
    rng = np.random.default_rng(0)
    for part in range(4):
        n = rows // 4
        cols = {f"f{i}": rng.standard_normal(n, dtype=np.float32) for i in range(features)}
        cols["y"] = sum(cols[f"f{i}"] for i in range(min(features, 4))).astype(np.float32)
        write_deltalake(str(path), pa.table(cols), mode="append")
    return path


def _batches(loader, features: int, device: str):
    while True:
        for b in loader:
            x = torch.stack([b[f"f{i}"] for i in range(features)], dim=1)
            yield {"x": x.to(device, non_blocking=True), "y": b["y"].to(device, non_blocking=True)}


def _steps_per_s(trainer, batches, steps: int, device: str) -> float:
    for _ in range(3):  # warm-up: kernels, allocator, first files
        trainer.train_step(next(batches))
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(next(batches))
    if device == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - t0)


def run(args) -> dict:
    from pipeline_opt.loader import DeltaDataset, DeltaLoader
    from pipeline_opt.training.loop import Trainer
    from pipeline_opt.training.planner import Plan

    device = args.device
    table = write_table(ROOT / "work" / f"feed_{args.rows}x{args.features}", args.rows, args.features)
    columns = [f"f{i}" for i in range(args.features)] + ["y"]
    plan = Plan.parse(args.plan)
    torch.manual_seed(0)
    trainer = Trainer(FeedModel(args.features, args.width, args.layers), [plan], device=device)
    fixed = {"x": torch.randn(args.batch, args.features, device=device), "y": torch.randn(args.batch, device=device)}

    def repeat():
        while True:
            yield fixed

    result = {"device": torch.cuda.get_device_name() if device == "cuda" else f"cpu ({platform.processor()})",
              "torch": torch.__version__, "rows": args.rows, "features": args.features, "batch": args.batch,
              "plan": plan.name, "width": args.width, "layers": args.layers,
              "on_device_steps_per_s": round(_steps_per_s(trainer, repeat(), args.steps, device), 3), "fed": []}
    for workers in args.workers:
        ds = DeltaDataset(str(table), columns=columns, batch_size=args.batch, shuffle=True, seed=0, drop_last=True)
        loader = DeltaLoader(ds, num_workers=workers, pin_memory=device == "cuda")
        t0, rows = time.perf_counter(), 0
        for b in loader:
            rows += len(b["y"])
        alone = rows / (time.perf_counter() - t0)
        fed = _steps_per_s(trainer, _batches(loader, args.features, device), args.steps, device)
        result["fed"].append({"workers": workers, "loader_rows_per_s": round(alone),
                              "fed_steps_per_s": round(fed, 3),
                              "device_busy_share": round(fed / result["on_device_steps_per_s"], 3)})
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda"))
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8192)
    ap.add_argument("--width", type=int, default=2048)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--plan", default="bf16+none+adamw")
    ap.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[0, 4])
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    result = run(args)
    out = Path(args.out or f"benchmarks/results/training_loader_feed{'' if args.device == 'cuda' else '_cpu'}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
