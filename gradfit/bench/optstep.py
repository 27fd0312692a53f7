"""Section (c): the optimizer step alone on the flat buffers, in GB/s.

An update is memory-bound: per element it reads ``params``, ``grads`` and every state array
and writes ``params`` and every state array, so its minimum traffic is
``(2 + 2 * n_state + 1) * P * itemsize`` bytes (the last entry of each ``OPTIMIZERS`` row
counts the arrays).  GB/s = that traffic / seconds.  The reference for the attainable rate is a
measured copy (``np.copyto``: one read + one write per element, STREAM's "Copy"), on one
thread, and with numba on the benchmark's threads.

The numpy path overwrites ``grads`` (it uses it as scratch space); to time it on the
same gradient each time, the gradient is restored with ``np.copyto`` before every step and
that copy's measured time is subtracted.
"""
from __future__ import annotations

import numpy as np

from .. import optimizers
from ..backend import configure_numba
from ..optimizers import drivers
from .timing import time_call, time_interleaved

#: name -> (gradfit.optimizers class, constructor kwargs, arrays moved per element)
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
    "nadam": ("Nadam", {}, 7),
    "lion": ("Lion", {}, 5),
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


def gradfit_step(name: str, n: int, fused: bool):
    """(step function, its row without timings, seconds to subtract per call) for one gradfit
    optimizer on ``n`` float32 parameters; step None (and an "error" row) without numba."""
    cls, kwargs, arrays = OPTIMIZERS[name]
    opt = optimizers.OPTIMIZERS[cls](fused=fused, **kwargs)
    rng = np.random.default_rng(0)
    params = rng.standard_normal(n).astype(np.float32)
    g0 = (rng.standard_normal(n) * 1e-2).astype(np.float32)
    grads = g0.copy()
    state = opt.init(params)
    numba_runs = fused and n >= drivers.PARALLEL_MIN
    path = ("fused (numba)" if numba_runs else f"fused (numpy < {drivers.PARALLEL_MIN:,})") \
        if fused else "numpy reference"
    row = {"optimizer": name, "path": path, "bytes": arrays * n * 4}
    if fused and configure_numba() is None:
        return None, {"optimizer": name, "path": "fused", "error": "numba not installed"}, 0.0
    if numba_runs:
        return (lambda: opt.update(params, grads, state)), row, 0.0  # grads only read

    def step():
        np.copyto(grads, g0)
        opt.update(params, grads, state)
    return step, row, time_call(lambda: np.copyto(grads, g0), min_time=0.1)


def torch_adam_steps(n: int, threads: int, foreach: bool = True):
    """({label: step}, {label: error}) for ``torch.optim.Adam`` on one float32 tensor of
    ``n`` values: ``fused=True`` and (optionally) ``foreach=True``; without torch an error row
    says so."""
    try:
        import torch
    except ImportError:
        return {}, {"torch Adam(fused=True)": "not installed: pip install torch==2.13.0"}
    torch.set_num_threads(threads)
    p = torch.zeros(n, requires_grad=True)
    p.grad = torch.randn(n) * 1e-2
    steps, errors = {}, {}
    variants = [("fused=True", {"fused": True})] + ([("foreach=True", {"foreach": True})]
                                                    if foreach else [])
    for label, kw in variants:
        try:
            steps[f"torch Adam({label})"] = torch.optim.Adam([p], lr=1e-3, **kw).step
        except (RuntimeError, ValueError, TypeError) as exc:
            errors[f"torch Adam({label})"] = str(exc)
    return steps, errors


def run_optstep(n: int, threads: int, quick: bool = False, optimizers=None, torch=True) -> dict:
    """Section (c): copy bandwidth, then every optimizer numpy vs fused, then torch's Adam.

    Each optimizer's numpy and fused paths are timed in turns (`time_interleaved`); Adam's
    are timed in the same turns as torch's Adam, the head-to-head the targets compare.
    """
    min_time, rounds = (0.02, 1) if quick else (1.0, 5)
    names = list(optimizers or (["sgd", "adam"] if quick else OPTIMIZERS))
    rows = []
    for name in names:
        steps, meta = {}, {}
        for fused in (False, True):
            step, row, refresh = gradfit_step(name, n, fused)
            if step is None:
                rows.append(row)
                continue
            steps[row["path"]] = step
            meta[row["path"]] = (row, refresh)
        torch_rows = []
        if name == "adam" and torch:
            tsteps, terrors = torch_adam_steps(n, threads, foreach=not quick)
            steps.update(tsteps)
            for label in tsteps:
                meta[label] = ({"optimizer": "adam", "path": label, "bytes": 7 * n * 4}, 0.0)
            torch_rows = [{"optimizer": "adam", "path": label, "error": err}
                          for label, err in terrors.items()]
        timed = time_interleaved(steps, rounds=rounds, min_time=min_time, warmup=1,
                                 settle=0.0 if quick else 0.15)
        for label, (row, refresh) in meta.items():
            sec = max(timed[label][0] - refresh, 1e-9)
            rows.append({**row, "seconds": sec, "seconds_median": timed[label][1] - refresh,
                         "gbps": row["bytes"] / sec / 1e9})
        rows += torch_rows
    copies = copy_bandwidth(n, str(threads), min_time)
    if not quick:  # out of the caches too
        copies += copy_bandwidth(16 * 1024 * 1024, str(threads), min_time)
    return {"parameters": n, "copy": copies, "steps": rows}
