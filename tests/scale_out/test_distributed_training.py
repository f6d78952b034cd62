"""`pipeline-opt train`'s job under TorchDistributor on the standalone cluster: 2 processes (gloo, CPU), each rank
its own shard with the same batch count, checkpoints that resume."""
import pytest
import torch

from pipeline_opt.loader import DeltaDataset

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def test_two_ranks_trained_on_the_cluster_not_in_local_mode(cluster_run):
    first = cluster_run["train"]
    assert first["world_size"] == 2 and first["local_mode"] is False
    assert first["first_step"] == 0 and first["steps"] == 4 and len(first["losses"]) == 4


def test_each_rank_checkpointed_its_own_shard_at_the_same_batch_count(cluster_run):
    states = [torch.load(cluster_run.checkpoints / f"checkpoint-rank{r}.pt", weights_only=False)
              for r in (0, 1)]
    assert [s["loader"]["plan"]["rank"] for s in states] == [0, 1]
    assert {s["loader"]["plan"]["world_size"] for s in states} == {2}
    assert [s["step"] for s in states] == [6, 6]
    assert states[0]["loader"]["batches_done"] == states[1]["loader"]["batches_done"] == 6


def test_the_shards_are_disjoint_and_equally_long(cluster_run):
    shards = [DeltaDataset(str(cluster_run.path), columns=["id"], batch_size=64, rank=r, world_size=2,
                           drop_last=True, shuffle=True) for r in (0, 1)]
    ids = [set(torch.cat([b["id"] for b in shard]).tolist()) for shard in shards]
    assert len(shards[0]) == len(shards[1]) > 0
    assert ids[0].isdisjoint(ids[1]) and len(ids[0]) == len(ids[1]) == len(shards[0]) * 64


def test_the_second_run_resumed_from_the_checkpoints(cluster_run):
    resumed = cluster_run["train_resumed"]
    assert resumed["first_step"] == 4 and resumed["steps"] == 6 and len(resumed["losses"]) == 2
