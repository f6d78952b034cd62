"""Your own model: the example factories (a ResNet, a BERT-style encoder with dropout, its mixture-of-experts form)
predicted within ±10 % of their measured CPU peaks, and every bad factory, argument and batch spec refused in one
line naming it."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from pipeline_opt.training.planner import Plan, predict
from pipeline_opt.training.workload import InputSpec, Workload, WorkloadError, factory_workload
from tests.training.conftest import measured_peak, tiny_bert, tiny_resnet

CASES = [("resnet", tiny_resnet, "fp32+none+adamw"), ("resnet", tiny_resnet, "bf16+none+adamw"),
         ("resnet", tiny_resnet, "bf16+full+adamw"), ("resnet", tiny_resnet, "pure_bf16+none+adamw"),
         ("bert", tiny_bert, "fp32+none+adamw"), ("bert", tiny_bert, "bf16+ops+adamw"),
         ("bert", tiny_bert, "fp32+every:2+adamw8bit"), ("bert-moe", lambda: tiny_bert(experts=4), "bf16+full+adamw")]


@pytest.mark.parametrize("label,make,name", CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_example_models_predicted_within_10_percent(label, make, name):
    workload, plan = make(), Plan.parse(name)
    measured = measured_peak(workload, plan)
    predicted = predict(workload, plan, "cpu")
    assert predicted.peak_bytes == pytest.approx(measured["peak"], rel=0.10)
    assert predicted.params == measured["params"] and predicted.optimizer_state == measured["optimizer_state"]


def test_factory_module_defaults_and_arguments():
    wl = factory_workload("pipeline_opt.training.models.bert:build", ["layers=3", "d_model=32", "heads=2"], [],
                          batch=2)
    assert wl.kwargs == {"layers": 3, "d_model": 32, "heads": 2} and wl.stack_arg == "layers"
    assert [str(i) for i in wl.inputs] == ["input_ids=int64[2,128]<8192", "labels=int64[2,128]<8192"]
    resnet = factory_workload("pipeline_opt.training.models.resnet:build", ["widths=[8, 16]"], [])
    assert resnet.kwargs["widths"] == [8, 16] and hash(resnet)


class _Stack(nn.Module):
    """No loss, no blocks attribute: a Sequential of repeated layers; forward returns the output tensor."""

    def __init__(self, width: int = 16):
        super().__init__()
        self.body = nn.Sequential(*(nn.Linear(width, width) for _ in range(3)))

    def forward(self, x):
        return self.body(x)


class _Routed(nn.Module):
    """Routing by a data-dependent mask: shapes only the data decides."""

    def __init__(self):
        super().__init__()
        self.router = _Router()

    def forward(self, x):
        return self.router(x).sum()


class _Router(nn.Module):
    def forward(self, x):
        return x[x > 0]


def make_stack(width: int = 16):
    return _Stack(width)


def make_routed():
    return _Routed()


def test_a_model_without_loss_or_blocks_attribute():
    from pipeline_opt.training.blocks import find_stack

    model = make_stack()
    assert len(find_stack(model)) == 3  # the repeated layers are the blocks
    wl = Workload.of(f"{__name__}:make_stack", {}, ["x=float32[4,16]"])
    pred = predict(wl, Plan.parse("fp32+full+adamw"), "cpu")
    assert pred.params == 4 * 3 * (16 * 16 + 16)
    measured = measured_peak(wl, Plan.parse("fp32+full+adamw"))
    assert pred.peak_bytes == pytest.approx(measured["peak"], rel=0.10)


@pytest.mark.parametrize("factory,args,inputs,match", [
    ("nosuch.module:build", {}, ["x=float32[4,16]"], "'nosuch.module:build' does not import"),
    ("pipeline_opt.training.models.bert:nosuch", {}, ["x=float32[4,16]"], "has no 'nosuch'"),
    ("pipeline_opt.training.model:MLP", {}, ["x=float32[4,16]"], "missing a required argument: 'in_features'"),
    (f"{__name__}:make_stack", {"depth": 3}, ["x=float32[4,16]"], "unexpected keyword argument 'depth'"),
    (f"{__name__}:make_stack", {}, ["image=float32[4,16]"], "'image' is not an argument of _Stack.forward"),
    (f"{__name__}:make_stack", {}, ["x=float32[4,8]"], "batch spec x=float32\\[4,8\\] does not fit .* 'body.0'"),
    (f"{__name__}:make_routed", {}, ["x=float32[4,16]"], "could not trace module 'router'"),
])
def test_bad_factories_and_batch_specs_are_one_line(factory, args, inputs, match):
    wl = Workload.of(factory, args, inputs)
    with pytest.raises(WorkloadError, match=match) as err:
        predict(wl, Plan.parse("fp32+none+adamw"), "cpu")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text", ["x=float32", "x=complex64[4]", "x=float32[0,3]", "=int64[4]"])
def test_bad_batch_spec_text(text):
    with pytest.raises(WorkloadError, match="batch spec"):
        InputSpec.parse(text)


def test_cli_plans_a_factory_and_refuses_a_bad_one(capsys):
    from pipeline_opt.app.cli import main

    base = ["memory-plan", "--model", "pipeline_opt.training.models.resnet:build", "--factory-arg", "widths=[8,16]",
            "--factory-arg", "depth=1", "--input", "pixels=float32[4,3,16,16]", "--input", "labels=int64[4]<10",
            "--device", "cpu", "--plan", "bf16+full+adamw"]
    assert main([*base, "--budget-gib", "0.01"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("budget 0.01 GiB") and "fits: bf16+full+adamw" in out
    assert main(["memory-plan", "--model", "pipeline_opt.training.models.resnet:build", "--input",
                 "pixels=float32[4,3]", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pixels=float32[4,3]" in err and "stem.0" in err


def test_moe_routing_is_traced_with_static_shapes():
    moe, dense = tiny_bert(experts=4), tiny_bert()
    assert predict(moe, Plan(), "cpu").params > predict(dense, Plan(), "cpu").params
    torch.manual_seed(0)
    model = moe.build()
    model.loss(moe.make_batch()).backward()  # the same factory trains for real
    assert model.blocks[0].ffn.w1.grad is not None
