"""Timing helper shared by the benchmarks: best of a few repeats, each long enough to time."""
from __future__ import annotations

import time


def time_call(fn, min_time: float = 0.2, repeats: int = 3, warmup: int = 1) -> float:
    """Seconds per call of ``fn()``: the best (lowest) of ``repeats`` averages.

    Each repeat runs ``fn`` enough times to last about ``min_time / repeats`` seconds
    (at least once), after ``warmup`` untimed calls.  The best repeat is the usual
    convention (``timeit``): noise only ever adds time.
    """
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-9)
    n = max(1, int(min_time / repeats / once))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best
