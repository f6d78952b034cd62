"""Training under a memory budget: precision, activation checkpointing, offload, low-bit optimizers, a planner.

Each technique is one module with a name registry (``precision.PRECISIONS``, ``checkpointing.parse``,
``optimizers.OPTIMIZERS``); ``planner`` predicts peak memory and speed of every combination and picks the fastest
that fits; ``loop.Trainer`` runs steps and steps down to a smaller plan on out-of-memory. Importing this package
does not import torch.
"""
from pipeline_opt.errors import PipelineOptError


class TrainingError(PipelineOptError):
    """A training setting is invalid or cannot run on this machine (the message names the value)."""


class CudaRequiredError(TrainingError):
    """The chosen technique exists only on CUDA devices."""
