"""What ran: versions, thread counts, the BLAS library and kernel, the CPU model."""
from __future__ import annotations

import importlib
import os
import platform

from .. import backend
from ..backend import configure_numba


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), with its core count."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} logical CPUs)"


def optional(name: str):
    """The optional framework ``name`` (torch, keras, cupy, numba...) imported, or None when it
    is absent or broken; Keras is loaded on its torch backend unless KERAS_BACKEND says else."""
    if name == "keras":  # Keras 3 defaults to TensorFlow; the bench runs it on torch
        os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - absent or broken: reported as absent
        return None


def _version(module: str):
    mod = optional(module)
    return None if mod is None else getattr(mod, "__version__", "?")


def thread_pools() -> list[dict]:
    """Every native thread pool threadpoolctl sees (BLAS, OpenMP): library, kernel, threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "threadpoolctl not installed: BLAS kernel unknown"}]
    keys = ("user_api", "internal_api", "version", "architecture", "num_threads", "prefix",
            "filepath")
    return [{k: d.get(k) for k in keys if d.get(k) is not None} for d in threadpool_info()]


def blas_kernel() -> str:
    """One line: numpy's BLAS library, version, kernel (architecture) and threads."""
    import numpy as np  # noqa: F401 - loads numpy's BLAS so threadpoolctl can see it
    blas = [p for p in thread_pools() if p.get("user_api") == "blas"]
    # torch bundles its own BLAS: name numpy's (its libraries live in numpy.libs / numpy)
    blas = sorted(blas, key=lambda p: "numpy" not in (p.get("filepath") or ""))
    if not blas:
        return "unknown (threadpoolctl missing or no BLAS found)"
    b = blas[0]
    return (f"{b.get('internal_api')} {b.get('version')}, kernel {b.get('architecture')}, "
            f"{b.get('num_threads')} threads")


def environment(threads: int) -> dict:
    """The header of every bench run (JSON-able)."""
    import numpy as np
    numba_threads = None
    numba = configure_numba()  # before numba starts threads: it picks the threading layer
    if numba is not None:
        numba_threads = numba.get_num_threads()
    torch_threads = None
    try:
        import torch
        torch_threads = torch.get_num_threads()
    except ImportError:
        pass
    return {
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {m: _version(m) for m in ("numpy", "numba", "torch", "keras", "cupy",
                                                "threadpoolctl")},
        "threads": {"requested": threads, "numba": numba_threads, "torch": torch_threads},
        "blas": blas_kernel(),
        "thread_pools": thread_pools(),
        "numpy_config_blas": _numpy_blas_name(np),
        "openblas_env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                        "OMP_NUM_THREADS",
                                                        "OPENBLAS_NUM_THREADS")
                         if os.environ.get(k) is not None},
        "backend": backend.get_backend(),
        "numba_threading_layer": _numba_layer(),
    }


def _numpy_blas_name(np):
    try:
        return np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    except Exception:  # noqa: BLE001 - older numpy: not critical
        return None


def _numba_layer():
    """numba's threading layer (omp, tbb, workqueue), once a parallel kernel has run."""
    try:
        import numba
        return numba.threading_layer()
    except (ImportError, ValueError):  # ValueError: no parallel kernel launched yet
        return None
