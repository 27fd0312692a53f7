"""Timing helper shared by the benchmarks: best of a few repeats, each long enough to time."""
from __future__ import annotations

import statistics
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


def time_interleaved(fns: dict, rounds: int = 5, min_time: float = 0.2, warmup: int = 2,
                     settle: float = 0.0) -> dict:
    """{label: (best, median)} seconds per call of each ``fns[label]()``, timed in turns.

    Each round times every function once (``time_call`` with one repeat of about
    ``min_time / rounds`` seconds), in the same order.  A burst of load from elsewhere on a
    shared machine then falls on every contender alike instead of on whichever happened to
    be running, and the best round of each is compared (noise only ever adds time); the
    median of the rounds is reported beside it to show the spread.

    ``settle``: seconds of untimed calls at the start of each turn.  Thread pools keep
    spinning after their work: OpenBLAS's workers for about 2^28 cycles (~0.1 s), so a
    PyTorch step right after numpy products ran 12-16 ms instead of 6 ms for its first
    ten calls on 2 cores.  Each contender is timed after the previous one's threads slept.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {label: [] for label in fns}
    for _ in range(max(1, rounds)):
        for label, fn in fns.items():
            t_end = time.perf_counter() + settle
            while time.perf_counter() < t_end:
                fn()
            times[label].append(time_call(fn, min_time=min_time / max(1, rounds), repeats=1,
                                          warmup=0))
    return {label: (min(ts), statistics.median(ts)) for label, ts in times.items()}
