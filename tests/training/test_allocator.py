"""The caching-allocator model against the rules of PyTorch's CUDA caching allocator (default settings).

CPU cannot measure reserved memory (it has no caching allocator); these cases pin the rules the GPU run checks
against ``torch.cuda.max_memory_reserved``.
"""
from __future__ import annotations

from pipeline_opt.training.allocator import CachingAllocator, replay, round_size, segment_size

MiB = 1 << 20


def test_rounding_and_segment_sizes():
    assert round_size(1) == 512 and round_size(512) == 512 and round_size(513) == 1024
    assert segment_size(1000) == 2 * MiB and segment_size(MiB) == 2 * MiB
    assert segment_size(MiB + 1) == 20 * MiB and segment_size(10 * MiB - 1) == 20 * MiB
    assert segment_size(10 * MiB) == 10 * MiB and segment_size(11 * MiB) == 12 * MiB


def test_small_requests_share_a_2_mib_segment():
    a = replay([(1, i, 1000) for i in range(100)])
    assert a.allocated == 100 * 1024 and a.reserved == 2 * MiB


def test_mid_size_requests_are_carved_from_20_mib_segments():
    a = CachingAllocator()
    for i in range(4):
        a.malloc(i, 5 * MiB)
    assert a.reserved == 20 * MiB and a.allocated == 20 * MiB
    a.malloc(4, 5 * MiB)
    assert a.reserved == 40 * MiB


def test_an_unsplit_remainder_counts_as_allocated():
    a = CachingAllocator()
    a.malloc("x", 11 * MiB)  # a 12 MiB segment; the 1 MiB left is not more than 1 MiB: the block stays whole
    assert a.reserved == 12 * MiB and a.allocated == 12 * MiB


def test_freed_neighbours_merge_and_are_reused():
    a = CachingAllocator()
    a.malloc("a", 4 * MiB)
    a.malloc("b", 4 * MiB)
    a.free("a")
    a.free("b")
    a.malloc("c", 18 * MiB)  # the merged 20 MiB block serves it: nothing new is reserved
    assert a.reserved == 20 * MiB and a.peak_reserved == 20 * MiB and a.allocated == 18 * MiB


def test_fragmentation_reserves_a_new_segment():
    a = CachingAllocator()
    for key in "abc":
        a.malloc(key, 6 * MiB)
    a.free("b")  # 6 MiB free in the middle, 2 MiB free at the end: no 7 MiB hole
    a.malloc("d", 7 * MiB)
    assert a.reserved == 40 * MiB and a.allocated == 19 * MiB


def test_peaks_reset_to_what_is_held():
    a = CachingAllocator()
    a.malloc("big", 30 * MiB)
    a.free("big")
    a.reset_peaks()
    assert a.peak_allocated == 0 and a.peak_reserved == 30 * MiB  # segments are kept: reserved does not drop
    a.malloc("again", 30 * MiB)
    assert a.peak_reserved == 30 * MiB


def test_replayed_steps_reserve_at_least_what_they_allocate(tiny_shape):
    from pipeline_opt.training.planner import Plan, predict

    pred = predict(tiny_shape, Plan.parse("bf16+none+adamw"), "cuda")
    assert pred.reserved_bytes is not None and pred.reserved_bytes >= pred.peak_bytes
    cpu = predict(tiny_shape, Plan.parse("bf16+none+adamw"), "cpu")
    assert cpu.reserved_bytes is None  # no caching allocator to model on a CPU
    assert pred.peak_bytes > cpu.peak_bytes  # 512-byte blocks and the cuBLAS workspace
