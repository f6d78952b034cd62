"""The blocks of a model: the repeated layers that activation checkpointing wraps and FSDP2 shards one by one.

Invariants: a model's ``blocks`` attribute (a ``ModuleList`` or ``Sequential``) is its stack when it has one;
otherwise the stacks are the outermost ``ModuleList``/``Sequential`` containers whose children repeat one class
with parameters (a transformer's layers, a ResNet stage); a container is never searched inside another stack.
``Stack`` entries are (container, index) slots, so wrapping a block replaces it in place and unwrapping restores
the very same module.
"""
from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass

import torch.nn as nn

_CONTAINERS = (nn.ModuleList, nn.Sequential)


@dataclass
class Stack:
    """The block slots of a model, in forward order."""

    slots: list  # [(container, index)]

    def __len__(self) -> int:
        return len(self.slots)

    def modules(self) -> list[nn.Module]:
        return [c[i] for c, i in self.slots]

    def replace(self, index: int, module: nn.Module) -> None:
        container, i = self.slots[index]
        container[i] = module

    def identical(self) -> bool:
        """Whether every block has the same class and parameter shapes (what closed-form extension needs)."""
        mods = [_inner(m) for m in self.modules()]
        if len(mods) < 2 or len({type(m) for m in mods}) != 1:
            return False
        sig = [tuple((n, tuple(p.shape), p.dtype) for n, p in m.named_parameters()) for m in mods]
        return all(s == sig[0] for s in sig)

    def single_container(self) -> bool:
        return len({id(c) for c, _ in self.slots}) == 1


def _inner(module: nn.Module) -> nn.Module:
    return getattr(module, "block", module) if type(module).__name__ in ("Checkpointed", "Offloaded") else module


def _is_stack(module: nn.Module) -> bool:
    if not isinstance(module, _CONTAINERS):
        return False
    kinds = Counter(type(_inner(c)) for c in module.children() if any(True for _ in c.parameters()))
    return bool(kinds) and kinds.most_common(1)[0][1] >= 2


def find_stack(model: nn.Module) -> Stack:
    """The model's block slots (empty when it has none)."""
    own = getattr(model, "blocks", None)
    if isinstance(own, _CONTAINERS):
        return Stack([(own, i) for i in range(len(own))])
    slots: list = []

    def walk(module: nn.Module) -> None:
        for child in module.children():
            if isinstance(child, _CONTAINERS) and _is_stack(child):
                slots.extend((child, i) for i in range(len(child)))
            else:
                walk(child)

    walk(model)
    return Stack(slots)


def block_of_param(model: nn.Module, stack: Stack) -> dict[int, int]:
    """id(parameter) → index of the block holding it (parameters outside the blocks are absent)."""
    out: dict[int, int] = {}
    for i, block in enumerate(stack.modules()):
        for p in block.parameters():
            out.setdefault(id(p), i)
    return out


@contextlib.contextmanager
def truncated(stack: Stack, keep: int):
    """The model with only the first ``keep`` blocks of its single stack container while inside."""
    (container, _), = {id(c): (c, 0) for c, _ in stack.slots}.values()
    removed = [container[i] for i in range(keep, len(container))]
    for _ in removed:
        del container[keep]
    try:
        yield
    finally:
        for module in removed:
            container.append(module)
