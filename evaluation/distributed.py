"""Sharing a benchmark run over processes and GPUs with torch.distributed (launched by ``torchrun``).

Without ``torchrun`` (no ``WORLD_SIZE`` in the environment) everything runs in one process, these helpers do
nothing and torch is not imported (scoring masks needs none). Under it, each process takes every
``world_size``-th sequence, and the scores are gathered on rank 0, which writes the results: the same numbers
as one process, since each sequence is scored on its own.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """This process's part: ``rank`` of ``world_size``, and the device it runs a model on (``None``: CUDA
    when available, else the CPU, decided by whoever loads the model)."""

    rank: int
    world_size: int
    device: str | None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def take(self, items: list[T]) -> list[T]:
        """This process's share of ``items``."""
        return items[self.rank :: self.world_size]

    def barrier(self) -> None:
        """Wait until every process gets here (a decision every process must take from the same state)."""
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()

    def gather(self, value: Any) -> list[Any] | None:
        """Every process's ``value``, in rank order, on rank 0 (``None`` elsewhere)."""
        if self.world_size == 1:
            return [value]
        import torch.distributed as dist

        out = [None] * self.world_size if self.is_main else None
        dist.gather_object(value, out, dst=0)
        return out


def setup(device: str | None = None) -> Shard:
    """Join the process group when launched by ``torchrun`` (NCCL on GPUs, gloo on CPUs)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Shard(0, 1, device)
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and (device is None or device.startswith("cuda"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Shard(dist.get_rank(), dist.get_world_size(), f"cuda:{local_rank}" if use_cuda else "cpu")


def teardown() -> None:
    dist = sys.modules.get("torch.distributed")  # not imported: no process group to leave
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
