"""The training loop: one plan at a time, stepping down to a smaller plan when a step runs out of memory.

Invariants: an out-of-memory error during a step frees that step's gradients, switches to the next plan of the
ladder (each predicted smaller than the last) and redoes the same step on the same batch — no batch is skipped or
repeated; every switch is recorded in ``step_downs`` with what it changed (an optimizer switch restarts the
optimizer state, a switch to bf16 weights rounds them — both are stated, never silent). Checkpoints hold model,
optimizer, scaler, step, plan and the loader's state, so a resumed run continues at the next unseen batch.
"""
from __future__ import annotations

import contextlib
import gc
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, cast

import torch

from pipeline_opt.training import TrainingError, checkpointing, optimizers
from pipeline_opt.training.memory import MemoryBreakdown, SavedActivations, measure_step, static_bytes
from pipeline_opt.training.planner import Plan
from pipeline_opt.training.precision import get_precision


@dataclass
class StepDown:
    step: int
    from_plan: str
    to_plan: str
    error: str
    changes: list[str]


@dataclass
class TrainResult:
    plan: str
    first_step: int
    steps: int
    losses: list[float]
    steps_per_s: float
    step_downs: list[StepDown] = field(default_factory=list)
    memory: list[dict] = field(default_factory=list)
    checkpoint: Optional[str] = None

    @property
    def loss_start(self) -> Optional[float]:
        return self.losses[0] if self.losses else None

    @property
    def loss_end(self) -> Optional[float]:
        return self.losses[-1] if self.losses else None


class Trainer:
    """Trains ``model`` with ``ladder[0]``; ``budget_bytes`` arms a budget guard that raises out-of-memory when
    parameters + gradients + optimizer state + saved activations would pass it (on any device)."""

    def __init__(self, model: torch.nn.Module, ladder: list[Plan], lr: float = 1e-3,
                 device: str | torch.device = "cpu", budget_bytes: Optional[int] = None,
                 compile_step: bool = True, world_size: int = 1, rank: int = 0, measure_every: int = 0):
        if not ladder:
            raise TrainingError("no plan to train with (the planner found none that fits the budget)")
        self.model, self.lr, self.device = model.to(device), lr, torch.device(device)
        self.budget_bytes, self.compile_step, self.world_size = budget_bytes, compile_step, world_size
        self.checkpoint_name = "checkpoint.pt" if world_size == 1 else f"checkpoint-rank{rank}.pt"
        self.measure_every = measure_every
        self.ladder, self.level = list(ladder), 0
        self.step_downs: list[StepDown] = []
        self.memory: list[dict] = []
        self.step_index = 0
        self.optimizer: Any = None  # optimizers.build: a torch optimizer or a wrapper of one; set by _setup
        self._setup(self.ladder[0])

    @property
    def plan(self) -> Plan:
        return self.ladder[self.level]

    def _setup(self, plan: Plan, previous: Optional[Plan] = None) -> list[str]:
        plan.validate()
        changes = []
        prec = get_precision(plan.precision)
        if previous is None or prec.param_dtype != get_precision(previous.precision).param_dtype:
            prec.prepare(self.model)
            if previous is not None:
                changes.append(f"weights cast to {str(prec.param_dtype).replace('torch.', '')}")
        checkpointing.apply(self.model, checkpointing.parse(plan.checkpointing))
        if previous is None or previous.optimizer != plan.optimizer or changes:
            if self.optimizer is not None:
                assert previous is not None  # only the first _setup, with no previous plan, finds no optimizer
                changes.append(f"optimizer state restarted ({previous.optimizer} → {plan.optimizer})")
            self.optimizer = optimizers.build(plan.optimizer, self.model, self.lr, self.compile_step)
        self.precision = prec
        self.scaler = prec.scaler(self.device.type)
        loss = cast(Callable[[dict], torch.Tensor], self.model.loss)  # every model here defines loss(batch)
        self.forward = torch.compile(loss) if plan.compile else loss
        spec = optimizers.get_spec(plan.optimizer)
        numels_bytes = [(p.numel(), p.element_size()) for p in self.model.parameters()]
        held_params = sum(n * b for n, b in numels_bytes)
        self._held = 2 * held_params + sum(spec.state_bytes(n, b) for n, b in numels_bytes)
        return changes

    def train_step(self, batch: dict) -> float:
        """One optimizer step on ``batch``; on out-of-memory, step down and redo the same batch."""
        while True:
            try:
                loss = self._measured_step(batch)
                self.step_index += 1
                return loss
            except torch.OutOfMemoryError as e:
                self._step_down(e)

    def _measured_step(self, batch: dict) -> float:
        if not self.measure_every or self.step_index % self.measure_every:
            return self._step(batch)
        held = static_bytes(self.model, self.optimizer).total
        meter: dict[str, int] = {}
        loss, peak, device_peak, method = measure_step(lambda: self._step(batch, meter), self.device, held)
        s = static_bytes(self.model, self.optimizer)
        self.memory.append({"step": self.step_index, "plan": self.plan.name, **asdict(MemoryBreakdown(
            s.params, s.params if s.grads == 0 else s.grads, s.optimizer_state, meter.get("activations"),
            peak, device_peak, method))})
        return loss

    def _step(self, batch: dict, meter: Optional[dict] = None) -> float:
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        counting = self.budget_bytes is not None or (meter is not None and not self.plan.compile)
        saved = SavedActivations(self.model, self._held, self.budget_bytes) if counting else contextlib.nullcontext()
        with saved, self.precision.autocast(self.device.type):
            loss = self.forward(batch)
        if meter is not None and isinstance(saved, SavedActivations):  # i.e. counting
            meter["activations"] = saved.bytes
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()
        if self.world_size > 1:
            self._all_reduce_grads()
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    def _all_reduce_grads(self) -> None:
        import torch.distributed as dist

        for p in self.model.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= self.world_size

    def _step_down(self, error: Exception) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if self.level + 1 >= len(self.ladder):
            raise TrainingError(f"out of memory at step {self.step_index} with plan {self.plan.name!r} and no "
                                f"smaller plan left: {error}") from None
        previous = self.plan
        self.level += 1
        changes = self._setup(self.plan, previous)
        self.step_downs.append(StepDown(self.step_index, previous.name, self.plan.name, str(error)[:200], changes))
        print(f"[pipeline-opt train] step {self.step_index}: out of memory with {previous.name}; "
              f"continuing with {self.plan.name} ({'; '.join(changes) or 'same weights and optimizer state'})",
              flush=True)

    def fit(self, batches: Iterable[dict], steps: int, checkpoint_dir: Optional[str | Path] = None,
            checkpoint_every: int = 0, loader=None) -> TrainResult:
        """Run until ``steps`` total steps (counting resumed ones) or the data ends; checkpoint as asked."""
        first, losses = self.step_index, []
        start = time.perf_counter()
        batches = iter(batches)
        while self.step_index < steps:  # check before pulling: the loader's state must count trained batches only
            batch = next(batches, None)
            if batch is None:
                break
            losses.append(self.train_step(batch))
            if checkpoint_dir and checkpoint_every and self.step_index % checkpoint_every == 0:
                self.save(checkpoint_dir, loader)
        elapsed = time.perf_counter() - start
        path = str(self.save(checkpoint_dir, loader)) if checkpoint_dir else None
        return TrainResult(self.plan.name, first, self.step_index, losses,
                           round(len(losses) / elapsed, 3) if elapsed > 0 else 0.0,
                           list(self.step_downs), list(self.memory), path)

    def save(self, directory: str | Path, loader=None) -> Path:
        """Write ``checkpoint.pt`` atomically (temp file, then rename): a crash never leaves half a checkpoint."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        checkpointing.unwrap(self.model)
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scaler": self.scaler.state_dict() if self.scaler else None, "step": self.step_index,
                 "plan": self.plan.name, "loader": loader.state_dict() if loader is not None else None}
        checkpointing.apply(self.model, checkpointing.parse(self.plan.checkpointing))
        tmp = directory / (self.checkpoint_name + ".tmp")
        torch.save(state, tmp)
        tmp.replace(directory / self.checkpoint_name)
        return directory / self.checkpoint_name

    def load(self, directory: str | Path, loader=None) -> bool:
        """Resume from this rank's checkpoint in ``directory`` if there is one (same plan); returns whether it did."""
        path = Path(directory) / self.checkpoint_name
        if not path.exists():
            return False
        state = torch.load(path, map_location=self.device, weights_only=False)
        if state["plan"] != self.plan.name:
            raise TrainingError(f"checkpoint {path} was written with plan {state['plan']!r}, not "
                                f"{self.plan.name!r}; resume with the same plan")
        checkpointing.unwrap(self.model)
        self.model.load_state_dict(state["model"])
        checkpointing.apply(self.model, checkpointing.parse(self.plan.checkpointing))
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.step_index = state["step"]
        if loader is not None and state["loader"] is not None:
            loader.load_state_dict(state["loader"])
        return True
