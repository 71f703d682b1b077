"""Data-parallel training with torch.distributed: DDP launched by ``torchrun`` (gloo on CPU, NCCL on
GPUs). Nothing home-made: ``torchrun`` starts the processes and sets RANK/WORLD_SIZE/MASTER_ADDR;
stkd joins the process group, gives each rank its share of every global batch (see
:func:`stkd.train.train_batches`), lets DDP average the gradients, and writes files from rank 0 only.

Single machine, N processes::

    stkd run --devices 2 --config my.yaml --out runs/ddp
    # which is the same as
    torchrun --standalone --nproc-per-node 2 -m stkd run --config my.yaml --out runs/ddp

Several machines (run on each; node-rank 0..nnodes-1, the first machine's address as endpoint)::

    torchrun --nnodes 2 --nproc-per-node 4 --node-rank 0 --rdzv-backend c10d \\
        --rdzv-endpoint host0:29500 -m stkd run --config my.yaml --out runs/ddp
"""

from __future__ import annotations

import os
import subprocess
import sys

import torch
import torch.distributed as dist


def is_rank0() -> bool:
    """True in a single process and on rank 0 of a group: the one process that writes files."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside torch.distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_from_env(device: str = "cpu") -> bool:
    """Join the process group torchrun prepared; a no-op (False) outside torchrun."""
    if not launched_by_torchrun() or (dist.is_available() and dist.is_initialized()):
        return dist.is_available() and dist.is_initialized()
    backend = "nccl" if device != "cpu" and torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend=backend)
    return True


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def sync_from_rank0(module) -> None:
    """Copy rank 0's parameters and dense buffers to every rank (no-op without DDP).

    Why: DDP keeps parameters equal, but batch-norm running statistics are updated by each rank's own
    half batch. Validating (and early stopping) on rank-specific statistics could let the ranks disagree,
    and a teacher whose statistics differ per rank would give each rank different soft labels. After
    this, every rank holds exactly the model rank 0 saves.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return
    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            if t.layout == torch.strided:
                dist.broadcast(t.data, src=0)


def rank0_first(fn):
    """``fn()`` on rank 0, then (after a barrier) on the other ranks; returns each rank's result.

    For work whose result rank 0 writes to disk and the others then read from there (the soft-label
    cache): it is computed once, not once per process. Without DDP it is just ``fn()``.
    """
    out = fn() if is_rank0() else None
    barrier()
    return out if is_rank0() else fn()


def shutdown(finished: bool = True) -> None:
    """Leave the process group. ``finished`` (the command returned on this rank): wait for every rank first,
    so that all tear their gloo connections down together (rank 0 still prints the result after the run's
    last barrier); after an error, leave at once: the others may never arrive."""
    if dist.is_available() and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def relaunch_with_torchrun(nproc: int, argv: list[str] | None = None) -> int:
    """Re-run this very command under ``torchrun --standalone`` with ``nproc`` processes."""
    argv = list(sys.argv[1:] if argv is None else argv)
    cleaned, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--devices":
            skip = True
            continue
        if a.startswith("--devices="):
            continue
        cleaned.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "stkd", *cleaned]
    return subprocess.call(cmd)
