"""Precision modes and checkpointing strategies: contract tests over every registered member, on CPU."""
from __future__ import annotations

import pytest
import torch

from pipeline_opt.training import TrainingError, checkpointing
from pipeline_opt.training.precision import PRECISIONS, get_precision


@pytest.mark.parametrize("name", list(PRECISIONS))
def test_every_precision_trains_a_step(name, tiny_shape, tiny_batch):
    prec = get_precision(name)
    torch.manual_seed(0)
    model = prec.prepare(tiny_shape.build())
    assert {p.dtype for p in model.parameters()} == {prec.param_dtype}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = prec.scaler("cpu")
    assert (scaler is not None) == (name == "fp16")
    with prec.autocast("cpu"):
        loss = model.loss(tiny_batch)
        logits = model(tiny_batch["tokens"])
    assert logits.dtype == (prec.autocast_dtype or prec.param_dtype)
    (scaler.scale(loss) if scaler else loss).backward()
    before = model.head.weight.detach().clone()
    if scaler:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()
    assert torch.isfinite(loss) and not torch.equal(before, model.head.weight)


def test_unknown_precision_names_the_value():
    with pytest.raises(TrainingError, match="'fp8'.*allowed"):
        get_precision("fp8")


def _grads(model, batch):
    model.zero_grad()
    model.loss(batch).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("spec", ["full", "every:2", "ops", "offload"])
def test_checkpointing_keeps_the_gradients(spec, tiny_shape, tiny_batch):
    torch.manual_seed(0)
    model = tiny_shape.build()
    reference = _grads(model, tiny_batch)
    checkpointing.apply(model, checkpointing.parse(spec))
    wrapped = [type(b).__name__ for b in model.blocks]
    assert wrapped != ["Block", "Block"]
    got = _grads(model, tiny_batch)
    checkpointing.unwrap(model)
    got = {n.replace(".block.", "."): g for n, g in got.items()}
    assert got.keys() == reference.keys()
    for name in reference:
        torch.testing.assert_close(got[name], reference[name], rtol=1e-4, atol=1e-6)


def test_every_n_wraps_blocks_like_the_anchor():
    ck = checkpointing.parse("every:2")
    assert [ck.wraps(i) for i in range(5)] == [True, False, True, False, True]
    assert checkpointing.parse("every:1") == checkpointing.parse("full")


@pytest.mark.parametrize("bad", ["every:0", "every:x", "some", ""])
def test_bad_checkpointing_spec(bad):
    with pytest.raises(TrainingError, match="allowed"):
        checkpointing.parse(bad)


@pytest.mark.gpu
def test_fp16_grad_scaler_and_activation_offload_on_cuda(tiny_shape, tiny_batch):
    prec = get_precision("fp16")
    model = tiny_shape.build().cuda()
    checkpointing.apply(model, checkpointing.parse("offload"))
    scaler = prec.scaler("cuda")
    batch = {k: v.cuda() for k, v in tiny_batch.items()}
    with prec.autocast("cuda"):
        loss = model.loss(batch)
    scaler.scale(loss).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
