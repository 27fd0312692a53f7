"""Section (c): the optimizer step alone on the flat buffers, in GB/s.

An update is memory-bound: per element it reads ``params``, ``grads`` and every state array
and writes ``params`` and every state array, so its minimum traffic is
``(2 + 2 * n_state + 1) * P * itemsize`` bytes (``BYTES_PER_ELEMENT`` below counts the
arrays).  GB/s = that traffic / seconds.  The reference for the attainable rate is a
measured copy (``np.copyto``: one read + one write per element, STREAM's "Copy"), on one
thread, and with numba on the benchmark's threads.

The numpy path overwrites ``grads`` (it turns it into the step direction); to time it on the
same gradient each time, the gradient is restored with ``np.copyto`` before every step and
that copy's measured time is subtracted.
"""
from __future__ import annotations

import numpy as np

from .timing import time_call

#: name -> (constructor kwargs for gradfit.optim.optimizers class, arrays moved per element)
OPTIMIZERS = {
    "sgd": ("SGD", {"learning_rate": 1e-3}, 3),
    "sgd_momentum": ("SGD", {"learning_rate": 1e-3, "momentum": 0.9}, 5),
    "sgd_nesterov": ("SGD", {"learning_rate": 1e-3, "momentum": 0.9, "nesterov": True}, 5),
    "adagrad": ("Adagrad", {}, 5),
    "rmsprop": ("RMSprop", {}, 5),
    "rmsprop_centered_momentum": ("RMSprop", {"centered": True, "momentum": 0.9}, 9),
    "adadelta": ("Adadelta", {}, 7),
    "adam": ("Adam", {}, 7),
    "amsgrad": ("Adam", {"amsgrad": True}, 9),
    "adamw": ("AdamW", {}, 7),
}


def copy_bandwidth(n: int, threads_label: str = "", min_time: float = 0.3) -> list[dict]:
    """GB/s of a copy of ``n`` float32 values: np.copyto (1 thread) and numba prange."""
    src = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    dst = np.empty_like(src)
    nbytes = 2 * src.nbytes
    sec = time_call(lambda: np.copyto(dst, src), min_time=min_time)
    rows = [{"name": f"np.copyto, 1 thread, {src.nbytes / 1e6:.1f} MB", "seconds": sec,
             "gbps": nbytes / sec / 1e9}]
    kernel = _parallel_copy()
    if kernel is not None:
        kernel(dst, src)
        sec = time_call(lambda: kernel(dst, src), min_time=min_time)
        rows.append({"name": f"numba prange copy, {threads_label} threads, "
                             f"{src.nbytes / 1e6:.1f} MB", "seconds": sec,
                     "gbps": nbytes / sec / 1e9})
    return rows


def _parallel_copy():
    try:
        import numba
    except ImportError:
        return None

    @numba.njit(parallel=True, cache=True)
    def copy(dst, src):
        for i in numba.prange(src.shape[0]):
            dst[i] = src[i]
    return copy


def bench_gradfit_step(name: str, n: int, fused: bool, min_time: float = 0.3) -> dict:
    from ..optim import optimizers as O
    cls, kwargs, arrays = OPTIMIZERS[name]
    opt = getattr(O, cls)(fused=fused, **kwargs)
    rng = np.random.default_rng(0)
    params = rng.standard_normal(n).astype(np.float32)
    g0 = (rng.standard_normal(n) * 1e-2).astype(np.float32)
    grads = g0.copy()
    state = opt.init(params)
    refresh = 0.0
    if fused:
        from ..optim import fused as F
        if not F.available():
            return {"optimizer": name, "path": "fused", "error": "numba not installed"}
        step = lambda: opt.update(params, grads, state)  # noqa: E731 - grads only read
    else:
        def step():
            np.copyto(grads, g0)
            opt.update(params, grads, state)
        refresh = time_call(lambda: np.copyto(grads, g0), min_time=min_time)
    sec = max(time_call(step, min_time=min_time) - refresh, 1e-9)
    nbytes = arrays * n * 4
    return {"optimizer": name, "path": "fused (numba)" if fused else "numpy reference",
            "seconds": sec, "bytes": nbytes, "gbps": nbytes / sec / 1e9}


def bench_torch_adam(n: int, threads: int, min_time: float = 0.3, foreach: bool = True):
    """``torch.optim.Adam(fused=True)`` on one float32 tensor of ``n`` values."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    p = torch.zeros(n, requires_grad=True)
    p.grad = torch.randn(n) * 1e-2
    rows = []
    variants = [("fused=True", {"fused": True})] + ([("foreach=True", {"foreach": True})]
                                                    if foreach else [])
    for label, kw in variants:
        try:
            opt = torch.optim.Adam([p], lr=1e-3, **kw)
        except (RuntimeError, ValueError, TypeError) as exc:
            rows.append({"optimizer": "adam", "path": f"torch Adam({label})", "error": str(exc)})
            continue
        sec = time_call(opt.step, min_time=min_time, repeats=1 if min_time < 0.1 else 3)
        rows.append({"optimizer": "adam", "path": f"torch Adam({label})", "seconds": sec,
                     "bytes": 7 * n * 4, "gbps": 7 * n * 4 / sec / 1e9})
    return rows


def run_optstep(n: int, threads: int, quick: bool = False) -> dict:
    """Section (c): copy bandwidth, then every optimizer numpy vs fused, then torch's Adam."""
    min_time = 0.02 if quick else 0.4
    names = ["sgd", "adam"] if quick else list(OPTIMIZERS)
    rows = []
    for name in names:
        for fused in (False, True):
            rows.append(bench_gradfit_step(name, n, fused, min_time))
    rows += bench_torch_adam(n, threads, min_time, foreach=not quick) or []
    copies = copy_bandwidth(n, str(threads), min_time)
    if not quick:  # out of the caches too
        copies += copy_bandwidth(16 * 1024 * 1024, str(threads), min_time)
    return {"parameters": n, "copy": copies, "steps": rows}
