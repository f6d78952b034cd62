"""Optimizers (contract over the registry) and memory accounting, on CPU."""
from __future__ import annotations

import pytest
import torch

from pipeline_opt.training import CudaRequiredError, TrainingError, optimizers
from pipeline_opt.training.memory import SavedActivations, measure_step, static_bytes, tensor_bytes
from pipeline_opt.training.model import MLP

CPU_OPTIMIZERS = [n for n, s in optimizers.OPTIMIZERS.items() if not s.needs_cuda]


def _regression(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 4, generator=g)
    return {"x": x, "y": x @ torch.tensor([1.0, -2.0, 0.5, 3.0])}


@pytest.mark.parametrize("name", CPU_OPTIMIZERS)
def test_every_cpu_optimizer_learns_and_reports_exact_state_bytes(name):
    torch.manual_seed(0)
    model = MLP(4, 128, 1)  # 128×128 weights: big enough for quantized state
    opt = optimizers.build(name, model, lr=1e-2, compile_step=False)
    batch = _regression()
    losses = []
    for _ in range(6):
        loss = model.loss(batch)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(loss))
    assert losses[-1] < 0.8 * losses[0]
    spec = optimizers.get_spec(name)
    predicted = sum(spec.state_bytes(p.numel(), p.element_size()) for p in model.parameters())
    assert static_bytes(model, opt).optimizer_state == predicted
    if spec.bits:
        assert predicted < 0.6 * sum(2 * p.numel() * 4 for p in model.parameters())


@pytest.mark.parametrize("name", [n for n, s in optimizers.OPTIMIZERS.items() if s.needs_cuda])
def test_cuda_only_optimizers_refuse_on_cpu(name):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(CudaRequiredError, match=repr(name)):
        optimizers.build(name, MLP(4, 16, 1), lr=1e-3)


def test_unknown_optimizer():
    with pytest.raises(TrainingError, match="'sgdx'.*allowed"):
        optimizers.get_spec("sgdx")


def test_pure_bf16_uses_stochastic_rounding():
    model = MLP(4, 64, 1)
    for p in model.parameters():
        p.data = p.data.bfloat16()
    opt = optimizers.build("adamw", model, lr=1e-3, compile_step=False)
    assert opt.inner.bf16_stochastic_round


def test_sparse_embeddings_go_to_sparse_adam():
    from pipeline_opt.training.model import GPT

    model = GPT(vocab=256, d_model=32, layers=1, heads=2, sparse_embeddings=True)
    opt = optimizers.build("adamw", model, lr=1e-2)
    kinds = [type(o).__name__ for o in optimizers.unwrap(opt)]
    assert kinds == ["AdamW", "SparseAdam"]
    tokens = torch.randint(0, 16, (2, 8))  # only rows 0..15 are touched
    model.loss({"tokens": tokens}).backward()
    assert model.emb.weight.grad.is_sparse
    before = model.emb.weight.detach().clone()
    opt.step()
    opt.zero_grad()
    assert torch.equal(before[16:], model.emb.weight[16:]) and not torch.equal(before[:16], model.emb.weight[:16])
    opt.load_state_dict(opt.state_dict())


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["cpu_offload", "bnb8bit", "bnb_paged8bit"])
def test_cuda_optimizers_step(name):
    if name.startswith("bnb"):
        pytest.importorskip("bitsandbytes")
    model = MLP(4, 128, 1).cuda()
    opt = optimizers.build(name, model, lr=1e-2)
    batch = {k: v.cuda() for k, v in _regression().items()}
    first = float(model.loss(batch))
    for _ in range(5):
        model.loss(batch).backward()
        opt.step()
        opt.zero_grad()
    assert float(model.loss(batch)) < first


def test_tensor_bytes_counts_shared_storage_once():
    t = torch.zeros(1000)
    seen: set = set()
    assert tensor_bytes(t, seen) == 4000 and tensor_bytes(t[:10], seen) == 0


def test_saved_activations_and_budget_guard():
    model = MLP(4, 32, 2)
    x = {"x": torch.randn(16, 4), "y": torch.randn(16)}
    with SavedActivations(model) as meter:
        model.loss(x)
    assert meter.bytes > 16 * 32 * 4  # at least one hidden activation, parameters excluded
    with pytest.raises(torch.OutOfMemoryError, match="budget"):
        with SavedActivations(model, base=0, budget=meter.bytes - 1):
            model.loss(x)


def test_measured_cpu_peak_sees_a_big_temporary():
    def step():
        big = torch.ones(2**20)  # 4 MiB held while a second 4 MiB tensor is made
        return float((big * 2).sum())

    _, peak, _, method = measure_step(step, torch.device("cpu"), held_before=1000)
    assert "profiler" in method
    assert 8 * 2**20 + 1000 <= peak < 12 * 2**20


def test_memory_snapshot_on_request_cpu(tmp_path, tiny_shape, tiny_batch):
    import json

    from pipeline_opt.training.loop import Trainer
    from pipeline_opt.training.memory import MemoryBreakdown, MemoryRecorder
    from pipeline_opt.training.planner import Plan

    trainer = Trainer(tiny_shape.build(), [Plan()], measure_every=1)
    trainer.train_step(tiny_batch)
    recorder = MemoryRecorder("cpu")
    row = {k: v for k, v in trainer.memory[0].items() if k not in ("step", "plan", "micro_batch")}
    recorder.add(0, MemoryBreakdown(**row))
    data = json.loads(recorder.snapshot(tmp_path / "snap.json").read_text())
    step = data["steps"][0]
    assert step["peak"] >= step["params"] + step["grads"] + step["optimizer_state"] > 0
