"""The training loop: one plan at a time, micro-batches accumulated, stepping down when a step runs out of memory.

Invariants: a step's batch is split into micro-batches of ``micro_batch`` rows whose losses are weighted by their
share of the rows, so the update equals the whole batch's; an out-of-memory error frees that step's gradients and
first halves the micro-batch (same plan, same math), and only when it is 1 switches to the next plan of the ladder
(each predicted smaller than the last) — then redoes the same step on the same batch, no batch skipped or repeated;
every switch is recorded in ``step_downs`` with what it changed (an optimizer switch restarts its state, a switch
to bf16 weights rounds them — stated, never silent). With several ranks the losses reported are the ranks' mean;
gradients are averaged (all-reduce) or, for ``fsdp2`` plans, reduce-scattered by FSDP2. Checkpoints hold model,
optimizer, scaler, step, plan and the loader's state in the safe form of ``checkpoint_io``.
"""
from __future__ import annotations

import contextlib
import gc
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence, Union

import torch

from pipeline_opt.training import TrainingError, checkpoint_io, checkpointing, fsdp, optimizers
from pipeline_opt.training.memory import MemoryBreakdown, SavedActivations, measure_step, static_bytes
from pipeline_opt.training.peaks import RunPeaks
from pipeline_opt.training.plan import Plan
from pipeline_opt.training.precision import get_precision

Rung = Union[Plan, tuple[Plan, Optional[int]]]


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
    micro_batch: Optional[int] = None
    # the run's own facts (``peaks.RunPeaks``): what the metrics recorder judges a training plan by
    peak_allocated_bytes: Optional[int] = None
    peak_reserved_bytes: Optional[int] = None
    memory_measure: str = ""
    tokens_per_s: float = 0.0
    oom_step_downs: int = 0

    @property
    def loss_start(self) -> Optional[float]:
        return self.losses[0] if self.losses else None

    @property
    def loss_end(self) -> Optional[float]:
        return self.losses[-1] if self.losses else None


class Trainer:
    """Trains ``model`` with ``ladder[0]`` (a plan, or a plan with its micro-batch); ``budget_bytes`` arms a budget
    guard that raises out-of-memory when parameters + gradients + optimizer state + saved activations would pass
    it (on any device); ``loss_fn(batch)`` defaults to ``model.loss``."""

    def __init__(self, model: torch.nn.Module, ladder: Sequence[Rung], lr: float = 1e-3,
                 device: str | torch.device = "cpu", budget_bytes: Optional[int] = None,
                 compile_step: bool = True, world_size: int = 1, rank: int = 0, measure_every: int = 0,
                 micro_batch: Optional[int] = None, loss_fn: Optional[Callable[[dict], torch.Tensor]] = None):
        if not ladder:
            raise TrainingError("no plan to train with (the planner found none that fits the budget)")
        rungs = [r if isinstance(r, tuple) else (r, None) for r in ladder]
        self.ladder = [p for p, _ in rungs]
        self.micro_of = [m for _, m in rungs]
        self.model, self.lr, self.device = model.to(device), lr, torch.device(device)
        self.budget_bytes, self.compile_step, self.world_size = budget_bytes, compile_step, world_size
        self.checkpoint_name = "checkpoint.pt" if world_size == 1 else f"checkpoint-rank{rank}.pt"
        self.measure_every, self.level, self.step_index = measure_every, 0, 0
        self.micro_batch = micro_batch or self.micro_of[0]
        self.step_downs: list[StepDown] = []
        self.memory: list[dict] = []
        self.optimizer: Any = None  # optimizers.build: a torch optimizer or a wrapper of one; set by _setup
        loss = loss_fn or getattr(model, "loss", None)
        if not callable(loss):
            raise TrainingError(f"{type(model).__name__} has no loss(batch) method: pass loss_fn")
        self._loss: Callable[[dict], torch.Tensor] = loss
        if self.ladder[0].sharded and world_size > 1:
            fsdp.shard(self.model, offload=self.ladder[0].shard == "fsdp2_offload")
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
        self.forward = self._compiled(plan) if plan.compile else self._loss
        spec = optimizers.get_spec(plan.optimizer)
        numels_bytes = [(p.numel(), p.element_size()) for p in self.model.parameters()]
        held_params = sum(n * b for n, b in numels_bytes)
        self._held = 2 * held_params + sum(spec.state_bytes(n, b) for n, b in numels_bytes)
        return changes

    def _compiled(self, plan: Plan) -> Callable[[dict], torch.Tensor]:
        compiled = torch.compile(self._loss)
        ckpt = checkpointing.parse(plan.checkpointing)
        if ckpt.kind != "budget":
            return compiled

        def forward(batch):  # the partitioner reads the budget when it compiles, at the first call
            with torch._functorch.config.patch(activation_memory_budget=ckpt.budget):
                return compiled(batch)
        return forward

    def train_step(self, batch: dict) -> float:
        """One optimizer step on ``batch``; on out-of-memory, step down and redo the same batch."""
        while True:
            try:
                loss = self._measured_step(batch)
                self.step_index += 1
                return loss
            except torch.OutOfMemoryError as e:
                self._step_down(e, _rows(batch))

    def _measured_step(self, batch: dict) -> float:
        if not self.measure_every or self.step_index % self.measure_every:
            return self._step(batch)
        held = static_bytes(self.model, self.optimizer).total
        meter: dict[str, int] = {}
        loss, peak, device_peak, method = measure_step(lambda: self._step(batch, meter), self.device, held)
        s = static_bytes(self.model, self.optimizer)
        self.memory.append({"step": self.step_index, "plan": self.plan.name, "micro_batch": self.micro_batch,
                            **asdict(MemoryBreakdown(s.params, s.params if s.grads == 0 else s.grads,
                                                     s.optimizer_state, meter.get("activations"), peak,
                                                     device_peak, method))})
        return loss

    def _step(self, batch: dict, meter: Optional[dict] = None) -> float:
        batch = self.precision.cast_batch({k: v.to(self.device, non_blocking=True) for k, v in batch.items()})
        rows = _rows(batch)
        total = 0.0
        for part in _micro_batches(batch, self.micro_batch or rows):
            total += self._micro_step(part, _rows(part) / rows, meter)
        if self.world_size > 1 and not fsdp.is_sharded(self.model):
            self._all_reduce_grads()
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return self._mean_over_ranks(total)

    def _micro_step(self, batch: dict, weight: float, meter: Optional[dict]) -> float:
        counting = self.budget_bytes is not None or (meter is not None and not self.plan.compile)
        saved = SavedActivations(self.model, self._held, self.budget_bytes) if counting else contextlib.nullcontext()
        with saved, self.precision.autocast(self.device.type):
            loss = self.forward(batch)
        if meter is not None and isinstance(saved, SavedActivations):  # i.e. counting
            meter["activations"] = max(meter.get("activations", 0), saved.bytes)
        scaled = loss * weight if weight != 1 else loss
        (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
        return float(loss.detach()) * weight

    def _mean_over_ranks(self, loss: float) -> float:
        if self.world_size == 1:
            return loss
        import torch.distributed as dist

        t = torch.tensor([loss], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t) / self.world_size

    def _all_reduce_grads(self) -> None:
        import torch.distributed as dist

        for p in self.model.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= self.world_size

    def _step_down(self, error: Exception, rows: int) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        current = self.micro_batch or rows
        if current > 1:
            smaller = max(d for d in range(1, current) if rows % d == 0)
            self._record(self.plan, self.plan, error, [f"micro-batch {current} → {smaller} (accumulation "
                                                       f"{-(-rows // current)} → {rows // smaller})"])
            self.micro_batch = smaller
            return
        if self.level + 1 >= len(self.ladder):
            raise TrainingError(f"out of memory at step {self.step_index} with plan {self.plan.name!r} at "
                                f"micro-batch 1 and no smaller plan left: {error}") from None
        previous = self.plan
        self.level += 1
        self.micro_batch = self.micro_of[self.level] or self.micro_batch
        self._record(previous, self.plan, error, self._setup(self.plan, previous))

    def _record(self, previous: Plan, plan: Plan, error: Exception, changes: list[str]) -> None:
        self.step_downs.append(StepDown(self.step_index, previous.name, plan.name, str(error)[:200], changes))
        print(f"[pipeline-opt train] step {self.step_index}: out of memory with {previous.name}; continuing with "
              f"{plan.name} ({'; '.join(changes) or 'same weights and optimizer state'})", flush=True)

    def fit(self, batches: Iterable[dict], steps: int, checkpoint_dir: Optional[str | Path] = None,
            checkpoint_every: int = 0, loader=None) -> TrainResult:
        """Run until ``steps`` total steps (counting resumed ones) or the data ends; checkpoint as asked."""
        first, losses, peaks = self.step_index, [], RunPeaks(self.device)
        step_downs_before = len(self.step_downs)
        start = time.perf_counter()
        batches = iter(batches)
        while self.step_index < steps:  # check before pulling: the loader's state must count trained batches only
            batch = next(batches, None)
            if batch is None:
                break
            losses.append(self.train_step(batch))
            peaks.after_step(batch)
            if checkpoint_dir and checkpoint_every and self.step_index % checkpoint_every == 0:
                self.save(checkpoint_dir, loader)
        elapsed = time.perf_counter() - start
        path = str(self.save(checkpoint_dir, loader)) if checkpoint_dir else None
        return TrainResult(self.plan.name, first, self.step_index, losses,
                           round(len(losses) / elapsed, 3) if elapsed > 0 else 0.0,
                           list(self.step_downs), list(self.memory), path, self.micro_batch,
                           **peaks.facts(self.memory, elapsed, len(self.step_downs) - step_downs_before))

    def save(self, directory: str | Path, loader=None) -> Path:
        """Write this rank's checkpoint atomically: a crash never leaves half a checkpoint."""
        checkpointing.unwrap(self.model)
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scaler": self.scaler.state_dict() if self.scaler else None, "step": self.step_index,
                 "plan": self.plan.name, "loader": loader.state_dict() if loader is not None else None}
        checkpointing.apply(self.model, checkpointing.parse(self.plan.checkpointing))
        return checkpoint_io.save(state, Path(directory) / self.checkpoint_name)

    def load(self, directory: str | Path, loader=None) -> bool:
        """Resume from this rank's checkpoint in ``directory`` if there is one (same plan); returns whether it did.
        The file is read with ``weights_only=True``: one that carries code is refused, not run."""
        path = Path(directory) / self.checkpoint_name
        if not path.exists():
            return False
        state = checkpoint_io.load(path, map_location=self.device)
        if state.get("plan") != self.plan.name:
            raise checkpoint_io.CheckpointError(f"checkpoint {path} was written with plan {state.get('plan')!r}, "
                                                f"not {self.plan.name!r}; resume with the same plan")
        checkpointing.unwrap(self.model)
        self.model.load_state_dict(checkpoint_io.shard_like(state["model"], self.model.state_dict()))
        checkpointing.apply(self.model, checkpointing.parse(self.plan.checkpointing))
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        self.optimizer.load_state_dict(_optimizer_state(state["optimizer"], params))
        if self.scaler is not None and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.step_index = int(state["step"])
        if loader is not None and state["loader"] is not None:
            loader.load_state_dict(state["loader"])
        return True


def _optimizer_state(state: dict, params: list) -> dict:
    if "optimizers" in state:  # CombinedOptimizer: one state per inner optimizer
        return state
    return checkpoint_io.shard_optimizer_state(state, params)


def _rows(batch: dict) -> int:
    return next(iter(batch.values())).shape[0]


def _micro_batches(batch: dict, micro: int) -> list[dict]:
    """``batch`` cut along its first dimension into pieces of ``micro`` rows (the last may be shorter)."""
    rows = _rows(batch)
    if micro >= rows:
        return [batch]
    return [{k: v[i:i + micro] for k, v in batch.items()} for i in range(0, rows, micro)]
