"""What the machine has, and the bounds of settings that would ask for more.

A size that cannot be allocated (``--hidden 1000000000``, a crafted
``config.json``) is refused with one clear message before anything is
allocated, never left to fail deep inside PyTorch or numpy. No torch or
numpy here: the command line checks flags before importing them.
"""

from __future__ import annotations

import math
import os

from .errors import InputError

#: The most a seed may be: what every random generator used here accepts (hmmlearn's: 2**32 - 1).
MAX_SEED = 2**32 - 1
#: Share of the memory available now that one model (weights, or weights and training state) may take.
MEMORY_SHARE = 0.8


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable`` of Linux, else the physical memory)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError, AttributeError):  # pragma: no cover  (not Linux or macOS)
        return 1 << 40


def human_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.3g} EiB"  # pragma: no cover


def check_memory(nbytes: float, what: str, *, error=InputError, path: str | None = None,
                 params: str | tuple[str, ...] = ()) -> None:
    """Raise ``error`` when ``what`` would take more than :data:`MEMORY_SHARE` of the memory available."""
    have = available_memory()
    if not math.isfinite(nbytes) or nbytes > MEMORY_SHARE * have:
        message = (f"{what} would take {human_bytes(nbytes)}, more than this machine can give it "
                   f"({human_bytes(have)} of memory available)")
        if error is InputError:
            raise InputError(message, path, params=params)
        raise error(message, path)


def check_seed(seed, name: str = "seed") -> None:
    """A seed is an integer in ``[0, MAX_SEED]`` (``None``: a fresh one, where the caller allows it)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InputError(f"{name} must be an integer from 0 to {MAX_SEED}, not {seed!r}", params=name)


def is_number(v) -> bool:
    """An int or float that is not a bool."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)
