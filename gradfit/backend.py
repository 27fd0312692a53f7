"""The array module (numpy or cupy), chosen once, and the thread count.

Every module that computes takes its arrays from ``xp()``, so the same code runs on
the CPU (numpy + BLAS) and on a GPU (CuPy).  The backend is chosen by
``set_backend("numpy" | "cupy")`` or the environment variable ``GRADFIT_BACKEND``
before the first model is built.
"""
from __future__ import annotations

import os

import numpy as np

_BACKENDS = ("numpy", "cupy")
_name = None
_xp = None


def set_backend(name: str) -> None:
    """Select the array module used by every layer, loss and optimizer."""
    global _name, _xp
    if name not in _BACKENDS:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(_BACKENDS)}")
    if name == "cupy":
        try:
            import cupy  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the machine
            raise ImportError(
                "backend 'cupy' needs CuPy and a CUDA GPU: pip install 'gradfit[gpu]'"
            ) from exc
        _xp = cupy
    else:
        _xp = np
    _name = name


def get_backend() -> str:
    """Name of the active backend ('numpy' or 'cupy')."""
    if _name is None:
        set_backend(os.environ.get("GRADFIT_BACKEND", "numpy"))
    return _name


def xp():
    """The active array module (numpy or cupy)."""
    if _xp is None:
        get_backend()
    return _xp


def to_numpy(a):
    """A numpy copy (or the array itself) of a backend array."""
    if isinstance(a, np.ndarray):
        return a
    if hasattr(a, "get"):
        return a.get()
    return np.asarray(a)


def set_num_threads(n: int) -> None:
    """Set the thread count of BLAS (through threadpoolctl) and of numba's kernels.

    Without threadpoolctl installed, set ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS``
    before Python starts instead.
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"number of threads must be >= 1, got {n}")
    global _limiter
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is not None:
        _limiter = threadpool_limits(limits=n)
    numba = configure_numba()
    if numba is not None:
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


_limiter = None


def configure_numba():
    """Import numba for the fused kernels and choose its threading layer; None if absent.

    numba's default OpenMP layer keeps its threads spinning after each parallel region, and
    on a small machine they steal the cores from the BLAS threads of the next matrix product:
    measured on 2 cores, a training step of the lecture's network at batch 8 took 15 ms with
    spinning workers and 4.8 ms with numba's `workqueue` layer, whose threads sleep. The
    layer is chosen before numba starts its threads; NUMBA_THREADING_LAYER, when set, wins.
    """
    try:
        import numba
    except ImportError:
        return None
    if "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = "workqueue"
    return numba


def blas_info() -> list[dict]:
    """What threadpoolctl reports about the BLAS in use (library, kernel, threads)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "threadpoolctl not installed"}]
    return [
        {k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "filepath")}
        for d in threadpool_info()
        if d.get("user_api") == "blas"
    ]
