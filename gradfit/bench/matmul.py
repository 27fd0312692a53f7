"""The lecture's matrix-product slide, measured: a Python loop, numpy's BLAS, a GPU.

A product ``(m x k) @ (k x n)`` costs ``2 m n k`` floating-point operations (one multiply
and one add per term), so GFLOP/s = ``2 m n k / seconds / 1e9``.
"""
from __future__ import annotations

import numpy as np

from .timing import time_call


def naive_matmul(a, b):
    """The triple loop in pure Python over lists of lists: what BLAS saves us from."""
    m, k, n = len(a), len(b), len(b[0])
    out = [[0.0] * n for _ in range(m)]
    for i in range(m):
        ai, oi = a[i], out[i]
        for p in range(k):
            aip, bp = ai[p], b[p]
            for j in range(n):
                oi[j] += aip * bp[j]
    return out


def bench_naive(size: int = 64) -> dict:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).tolist()
    b = rng.standard_normal((size, size)).tolist()
    sec = time_call(lambda: naive_matmul(a, b), min_time=0.3 if size > 16 else 0.01,
                    repeats=2, warmup=0)
    return {"name": "Python triple loop (float64)", "shape": [size, size, size],
            "seconds": sec, "gflops": 2 * size**3 / sec / 1e9}


def bench_numpy(m: int, k: int, n: int, dtype="float32", min_time=1.0, repeats=3) -> dict:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    out = np.empty((m, n), dtype)
    sec = time_call(lambda: np.matmul(a, b, out=out), min_time=min_time, repeats=repeats)
    return {"name": f"numpy matmul ({dtype}, BLAS)", "shape": [m, k, n], "seconds": sec,
            "gflops": 2 * m * n * k / sec / 1e9}


def bench_cupy(m: int, k: int, n: int, dtype="float32") -> dict | None:
    """The same product on the GPU through CuPy; None when there is no CuPy or no GPU."""
    try:
        import cupy as cp
        if cp.cuda.runtime.getDeviceCount() < 1:
            return None
    except Exception:  # noqa: BLE001 - no CuPy, no driver, no device: no GPU row
        return None
    a = cp.random.standard_normal((m, k), dtype=dtype)
    b = cp.random.standard_normal((k, n), dtype=dtype)
    out = cp.empty((m, n), dtype)

    def run():
        cp.matmul(a, b, out=out)
        cp.cuda.Device().synchronize()
    sec = time_call(run, min_time=0.5)
    props = cp.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return {"name": f"cupy matmul ({dtype}, {name})", "shape": [m, k, n], "seconds": sec,
            "gflops": 2 * m * n * k / sec / 1e9}


def run_matmul(quick: bool = False) -> list[dict]:
    """Rows of section (a); the numpy float32 row is the reference rate for section (b)."""
    shape = (128, 128, 128) if quick else (10000, 1500, 1000)
    rows = [bench_naive(16 if quick else 64)]
    rows.append(bench_numpy(*shape, "float32", min_time=0.01 if quick else 1.5))
    rows.append(bench_numpy(*shape, "float64", min_time=0.01 if quick else 1.5))
    gpu = bench_cupy(*shape)
    if gpu is not None:
        rows.append(gpu)
    return rows
