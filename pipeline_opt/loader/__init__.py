"""Stream Delta tables into PyTorch: exact rows of a pinned snapshot, sharded, shuffled, resumable.

``DeltaDataset`` (an ``IterableDataset`` of dicts column → tensor) and ``DeltaLoader`` (worker processes,
``state_dict``/``load_state_dict``). Importing this package does not import torch until a dataset is built.
"""
from __future__ import annotations

__all__ = ["DeltaDataset", "DeltaLoader", "FileCache", "LoaderError", "shuffle_quality"]


def __getattr__(name):
    if name == "DeltaDataset":
        from pipeline_opt.loader.dataset import DeltaDataset
        return DeltaDataset
    if name == "DeltaLoader":
        from pipeline_opt.loader.loader import DeltaLoader
        return DeltaLoader
    if name == "FileCache":
        from pipeline_opt.loader.file_cache import FileCache
        return FileCache
    if name == "LoaderError":
        from pipeline_opt.loader.errors import LoaderError
        return LoaderError
    if name == "shuffle_quality":
        from pipeline_opt.loader.shuffle import shuffle_quality
        return shuffle_quality
    raise AttributeError(name)
