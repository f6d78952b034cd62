"""Helpers shared by the loader tests."""
from __future__ import annotations

import torch

from pipeline_opt.loader import DeltaLoader


def ids_of(batches) -> list:
    return torch.cat([b["id"] for b in batches]).tolist() if batches else []


def epoch_ids(dataset, num_workers=0) -> list:
    return ids_of(list(DeltaLoader(dataset, num_workers=num_workers)))
