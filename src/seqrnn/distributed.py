"""Training and detection across processes, on PyTorch's own engine (torch.distributed).

Started by ``torchrun`` (``torchrun --nproc-per-node N -m seqrnn train ...``,
on one machine or many), which sets ``RANK``, ``WORLD_SIZE`` and the
rendezvous in the environment: :func:`setup` joins the process group (gloo
on CPU, NCCL on GPU). Nothing here communicates by itself: gradients are
averaged by :class:`~torch.nn.parallel.DistributedDataParallel`, sums by
``all_reduce``.

How the work is shared:

* data read into memory (``train DATA --format sessions``): every rank
  reads it and draws the same batches (same seed); each rank takes the
  rows ``rank::size`` of each batch (:class:`RankBatches`), so the group's
  batch is the batch one process would train on. The loss is divided by
  the group's event count (:meth:`Group.loss_scale`), so the averaged
  gradient is the one-process gradient of that batch;
* shards (:mod:`seqrnn.data.shards`): each rank reads its own shards;
* validation: each rank validates its rows, the sums are added up, so all
  ranks see the same validation loss and stop at the same epoch;
* files: rank 0 alone writes (checkpoint, history, weights, detector);
  ``--resume`` makes every rank read the checkpoint rank 0 wrote (on many
  machines the model directory must be on a shared file system).
"""

from __future__ import annotations

import os

import numpy as np

from .data.vocab import PAD


def launched() -> bool:
    """Whether this process is one of several started by torchrun (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


class Group:
    """The processes training together: rank, size, sums across them. One process: a group of one."""

    def __init__(self, rank: int = 0, size: int = 1):
        self.rank, self.size = rank, size

    @property
    def writer(self) -> bool:
        """Whether this process writes the files (rank 0)."""
        return self.rank == 0

    def sum(self, values: list[float]) -> list[float]:
        """``values`` added up over the group (in float64)."""
        if self.size == 1:
            return list(values)
        import torch
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` holds in any process (so that all stop at the same step)."""
        return bool(self.sum([float(flag)])[0]) if self.size > 1 else flag

    def loss_scale(self, count: float) -> float:
        """What this process's summed loss is multiplied by before backward: the group's gradient, averaged
        by DDP over ``size`` processes, is then the gradient of the group's summed loss over its events."""
        if self.size == 1:
            return 1.0 / max(count, 1)
        return self.size / max(self.sum([count])[0], 1)

    def barrier(self) -> None:
        if self.size > 1:
            import torch.distributed as dist

            dist.barrier()


LOCAL = Group()
_left = False  # finish() was called: this process trains alone from now on (rank 0's calibration copies)


def setup(device=None) -> Group:
    """Join the process group torchrun described (once), or the group of one; returns it."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return Group(dist.get_rank(), dist.get_world_size())
    if not launched() or _left:  # after finish(), the other ranks are gone: a fit now (the copies) is local
        return LOCAL
    import torch

    backend = "nccl" if device is not None and torch.device(device).type == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)
    return Group(dist.get_rank(), dist.get_world_size())


def current() -> Group:
    """The group this process belongs to now (the group of one unless :func:`setup` joined one)."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return Group(dist.get_rank(), dist.get_world_size())
    except ImportError:  # pragma: no cover
        pass
    return LOCAL


def finish() -> None:
    """Leave the process group, if one was joined; later fits in this process train alone."""
    global _left
    import torch.distributed as dist

    _left = launched()
    if dist.is_available() and dist.is_initialized():
        import gc

        gc.collect()  # a DistributedDataParallel wrapper no longer used goes now, while its group is alive
        # Every rank calls this after the same collective work; meeting first means no rank tears its
        # connections down while a peer's gloo threads still use them (seen once in CI as a SIGABRT at exit,
        # 'terminate called without an active exception').
        dist.barrier()
        dist.destroy_process_group()


def wrap(net, group: Group, device=None):
    """``net`` for training in ``group``: DistributedDataParallel when there are several processes."""
    if group.size == 1:
        return net
    from torch.nn.parallel import DistributedDataParallel

    ids = [net_device(net).index] if net_device(net).type == "cuda" else None
    return DistributedDataParallel(net, device_ids=ids, broadcast_buffers=False)


def net_device(net):
    return next(net.parameters()).device


class RankBatches:
    """A next-event batch maker's batches, this rank's rows of each (``rank::size``).

    Every rank draws the same batches (the same random generator) and keeps
    its rows. A batch with fewer rows than ranks leaves some ranks without
    any: they take its first row with every target ``PAD`` (nothing
    trained), so that every rank still steps with the group.
    """

    def __init__(self, inner, group: Group):
        self.inner, self.group = inner, group

    def __len__(self) -> int:
        return len(self.inner)

    def n_batches(self) -> int:
        return self.inner.n_batches()

    def epoch(self, rng):
        r, n = self.group.rank, self.group.size
        for batch in self.inner.epoch(rng):
            x, y, *rest = batch
            if len(x) > r:
                yield (np.ascontiguousarray(x[r::n]), np.ascontiguousarray(y[r::n]), *rest)
            else:
                yield (np.ascontiguousarray(x[:1]), np.full_like(y[:1], PAD), *rest)


def rank_part(n: int, group: Group) -> range:
    """The contiguous part of ``n`` items (sequences to detect) that this rank takes."""
    start, end = n * group.rank // group.size, n * (group.rank + 1) // group.size
    return range(start, end)
