"""The memory guard: a second-order method is refused BEFORE it allocates its n x n matrix when
that would not fit in the memory available, with the lecture's arithmetic in the message.

    >>> check_memory("lm", 79_510, network="784-100-10", available=21e9)   # doctest: +SKIP
    InsufficientMemoryError: lm on this 784-100-10 network needs JᵀJ of 79,510² float64 =
    50.6 GB (101.2 GB at its peak ...); 21.0 GB available: use 'lbfgs' ...

The bytes are those of `gradfit.memory.method_bytes` (peak: every large array alive at once).
The memory available is, in this order: the ``available`` argument, the environment variable
``GRADFIT_MEMORY_AVAILABLE`` (bytes, e.g. ``2e9``: for tests and for sharing a machine), or
``MemAvailable`` of ``/proc/meminfo`` (Linux; elsewhere no limit is known and nothing is
refused).  Under MPI every rank holds its own copy: the guard is per process.
"""
from __future__ import annotations

import os

from .. import memory
from ..memory import human_bytes, method_bytes

ENV_VAR = "GRADFIT_MEMORY_AVAILABLE"


class InsufficientMemoryError(MemoryError):
    """A method's matrices would not fit in the memory available (nothing was allocated)."""


def available_bytes() -> int | None:
    """Bytes this process may still allocate: $GRADFIT_MEMORY_AVAILABLE, else MemAvailable of
    /proc/meminfo (`gradfit.memory.available_bytes`), else None (unknown)."""
    value = os.environ.get(ENV_VAR)
    if not value:
        return memory.available_bytes()
    try:
        limit = float(value)
    except ValueError:
        raise ValueError(f"{ENV_VAR} must be a number of bytes such as 2e9, got {value!r}") from None
    if not limit >= 0:
        raise ValueError(f"{ENV_VAR} must be a number of bytes >= 0, got {value!r}")
    return int(limit)


def check_memory(method: str, n: int, network: str | None = None, available=None,
                 examples: int | None = None, outputs: int = 1, history: int = 10) -> dict:
    """Refuse `method` on n weights when its peak bytes exceed the memory available.

    Returns the `gradfit.memory.method_bytes` row when it fits; raises
    `InsufficientMemoryError` otherwise, naming the sizes and the methods that would fit.
    `network` (e.g. ``"784-100-10"``) names the network in the message.
    """
    need = method_bytes(method, n, examples=examples, outputs=outputs, history=history)
    limit = available_bytes() if available is None else int(available)
    if limit is None or need["peak_bytes"] <= limit:
        return need
    where = f"this {network} network" if network else f"a network of {n:,} weights"
    peak = "" if need["peak_bytes"] == need["matrix_bytes"] else \
        f" ({human_bytes(need['peak_bytes'])} at its peak, with the working copy)"
    lbfgs = method_bytes("lbfgs", n, history=history)
    others = [f"'lbfgs' (history {human_bytes(lbfgs['matrix_bytes'])})",
              "'newton_cg' (Hessian-vector products, a few vectors of n)", "'adam'"]
    others = [o for o in others if not o.startswith(f"'{method}'")]
    raise InsufficientMemoryError(
        f"{method} on {where} needs {need['matrix']} = {human_bytes(need['matrix_bytes'])}{peak}; "
        f"{human_bytes(limit)} available: use {', '.join(others[:-1])} or {others[-1]}, whose "
        "memory grows as n, not n\u00b2")
