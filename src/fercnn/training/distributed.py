"""Data-parallel training with torchrun: ``torchrun --nproc_per_node=N -m fercnn train ...``.

Every rank holds the whole dataset, draws the same global batch and augments it identically
(same seeded generator), then keeps its own slice ``rank::world``; DistributedDataParallel
averages the gradients, so the step equals a single process's step on the global batch (up to
batch norm, whose statistics stay per rank). Rank 0 alone writes checkpoints, logs and plots.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def shard(self, tensor: torch.Tensor) -> torch.Tensor:
        """This rank's slice of a global batch."""
        return tensor[self.rank::self.world] if self.active else tensor

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum over ranks (in place), for epoch metrics."""
        if self.active:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def init_ranks(device_kind: str) -> Ranks:
    """Join the process group torchrun describes in the environment; one rank otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks()
    use_cuda = device_kind != "cpu" and torch.cuda.is_available()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local_rank)
    else:  # share the cores instead of every rank using all of them
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return Ranks(dist.get_rank(), dist.get_world_size(), local_rank)


def close_ranks(ranks: Ranks) -> None:
    if ranks.active and dist.is_initialized():
        dist.destroy_process_group()
