"""How many threads a run uses, and how its threads wait: a fair share of a busy machine.

PyTorch's CPU kernels run on GNU OpenMP (libgomp). Between two parallel
regions an idle libgomp thread spins for ``GOMP_SPINCOUNT`` iterations
(300,000 by default, about a millisecond) before it sleeps. A small
recurrent network runs thousands of short parallel regions a second, so
its threads never sleep: alone that costs nothing, but next to another job
on the same cores the spinning threads take the time slices the other
job's working threads need, and both slow by 20x or more (measured here:
two copies of a training run on a 2-core machine, 2% of the alone speed
each, where a fair share is 50%).

The remedy has to act before the OpenMP runtime is loaded (it reads its
environment once, when ``import torch`` loads it), so it is applied here
as environment variables, by :func:`configure`, which ``seqrnn``'s package
``__init__`` calls at import when torch is not loaded yet (the CLI imports
torch only inside a command) and :func:`seqrnn.cli.main` calls again:

* ``GOMP_SPINCOUNT`` (:data:`SPINCOUNT`): a short spin, then sleep.
  ``OMP_WAIT_POLICY=PASSIVE`` (no spin at all) shares as well but halves
  the speed of a small model alone (every region wakes sleeping threads);
  a short spin keeps most of the alone speed (bench/busy_machine.py);
* ``OMP_NUM_THREADS`` (:func:`default_threads`): the cores this process may
  run on, less those that are busy (the 1-minute load average, or the
  processes running right now, whichever is more), at least one. This is
  the larger part of the remedy: threads that wait for each other at every
  region lose most when another job takes one of their cores, whatever the
  spin (two copies each on both cores: 32% of the alone speed; each on one
  core, as this rule makes them: 92%).

A variable the user has set is never changed. ``SEQRNN_RUNTIME=default``
leaves everything to the libraries (the behaviour before this module; the
benchmark's "before"). ``--threads N`` on a command (or
``threads=N`` in a model's settings) sets the threads explicitly.
"""

from __future__ import annotations

import os
import sys

# libgomp spin iterations before a waiting thread sleeps (its default: 300000). Measured with
# bench/busy_machine.py (2 cores, two copies of a deeplog training each on both cores): a copy
# beside the other kept 10% of its alone speed with 10000, 32% with 1000, 16% with the default;
# alone, 1000 costs 12% against the default.
SPINCOUNT = "1000"
OFF = "default"  # SEQRNN_RUNTIME=default: leave OpenMP's and torch's defaults alone


def cores() -> int:
    """The cores this process may run on (its CPU affinity; all of them where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def running_now() -> int:
    """Processes running or ready to run on the machine now, this one excluded (0 where unknown)."""
    try:
        with open("/proc/loadavg") as fh:
            return max(0, int(fh.read().split()[3].split("/")[0]) - 1)
    except (OSError, IndexError, ValueError):
        return 0


def default_threads() -> int:
    """Threads for the machine as it is: its cores less the busy ones, at least one.

    Busy: the 1-minute load average, or the other processes running now if
    more (two copies started together see each other only that way)."""
    n = cores()
    try:
        load = int(os.getloadavg()[0] + 0.5)
    except (AttributeError, OSError):
        load = 0
    return max(1, min(n, n - max(load, running_now())))


def configure(environ=os.environ) -> dict:
    """Set the spin and thread defaults in ``environ`` where the user has not; returns what was set.

    Acts only while torch is not imported (afterwards the OpenMP runtime has
    read its environment already) and unless ``SEQRNN_RUNTIME=default``.
    """
    if environ.get("SEQRNN_RUNTIME") == OFF or "torch" in sys.modules:
        return {}
    wanted = {"GOMP_SPINCOUNT": SPINCOUNT, "OMP_NUM_THREADS": str(default_threads())}
    if "OMP_WAIT_POLICY" in environ:  # the user chose the wait policy: leave the spin count to it
        del wanted["GOMP_SPINCOUNT"]
    done = {k: v for k, v in wanted.items() if k not in environ}
    environ.update(done)
    return done


def set_threads(threads: int | None) -> None:
    """Use ``threads`` CPU threads (``None`` or 0: leave the default): before torch loads through
    ``OMP_NUM_THREADS``, afterwards through ``torch.set_num_threads``."""
    if not threads or threads < 1:
        return
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(threads)
    else:
        os.environ["OMP_NUM_THREADS"] = str(threads)


def scoring_threads() -> int:
    """Threads for scoring outside torch (seqrnn.models.numpy_rnn): torch's count where torch is
    loaded, else ``OMP_NUM_THREADS`` (:func:`configure` or :func:`set_threads` set it), else the cores."""
    if "torch" in sys.modules:
        import torch

        return torch.get_num_threads()
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return cores()


def describe() -> dict:
    """How this process computes, for the model directory: threads (and the spin setting)."""
    out = {"threads": None, "gomp_spincount": os.environ.get("GOMP_SPINCOUNT"),
           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}
    if "torch" in sys.modules:
        import torch

        out["threads"] = torch.get_num_threads()
    return out


def resolve_device(name: str = "auto"):
    """The torch device for a ``device`` setting: ``auto`` is the first GPU if torch sees one, else the
    CPU; asking for ``cuda`` where there is none is the user's error."""
    import torch

    from .errors import InputError

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {name}: torch sees no GPU here (use --device cpu or auto)", params="device")
    return torch.device(name)
