"""The optimizer step before and after issue 14's rewrite, timed in alternating processes.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/optimizer_before_after.py --rounds 7 --threads 2

"Before" is the commit ``--before`` (default 5d07e62, main before the rewrite), checked out
with ``git worktree add --detach`` into a temporary folder and removed at the end; "after" is
this tree as it is.  Each round runs one worker process per checkout, alternating which goes
first, and each worker times, in its own checkout's code (``gradfit.optimizers.Adam`` / ``SGD``
exist in both):

* Adam, fused (numba), 2,555,501 float32 parameters (the lecture network), ``--threads``;
* Adam, numpy path (``fused=False``), 2,555,501 and 20,000 float32 parameters;
* SGD with momentum, numpy path, 20,000 parameters: 4 operations per element, where the
  fixed cost of a call shows.

A worker reports, per measurement, the best time per step over ``--repeats`` timed batches
(noise only ever adds time); this script prints the min / median / max of those over the
rounds, per checkout, and after / before of the medians, with the threads, the BLAS kernel
(threadpoolctl), numba's threading layer, the versions and the load average.  The numpy path
consumes the gradient, so it is restored by a copy before each numpy step, and that copy's
time, measured alone, is subtracted.  The first call (numba compilation or its cache) is not
timed.  On a shared machine the numbers move from minute to minute: compare the two columns of
one run only.
"""
import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import before_after
from before_after import ROOT
LECTURE = 2_555_501
CASES = [  # (label, optimizer class, kwargs, fused, parameters)
    ("Adam fused (numba), 2,555,501", "Adam", {}, True, LECTURE),
    ("Adam numpy, 2,555,501", "Adam", {}, False, LECTURE),
    ("Adam numpy, 20,000", "Adam", {}, False, 20_000),
    ("SGD momentum numpy, 20,000", "SGD", {"momentum": 0.9}, False, 20_000),
]


def worker(threads, min_time, repeats):
    """Time every case in the gradfit found on PYTHONPATH; print one JSON line."""
    import numpy as np

    import gradfit
    from gradfit import backend, optimizers
    from gradfit.bench.timing import time_call   # the same code in both checkouts

    def best_time(fn, min_time, repeats):
        return time_call(fn, min_time=min_time, repeats=repeats, warmup=1)
    backend.set_num_threads(threads)
    numba = backend.configure_numba()
    out = {"gradfit": os.path.dirname(gradfit.__file__), "times": {}}
    for label, cls, kwargs, fused, n in CASES:
        rng = np.random.default_rng(0)
        opt = getattr(optimizers, cls)(fused=fused, **kwargs)
        params = rng.standard_normal(n).astype(np.float32)
        g0 = (rng.standard_normal(n) * 1e-2).astype(np.float32)
        grads = g0.copy()
        state = opt.init(params)
        if fused:
            seconds = best_time(lambda: opt.update(params, grads, state), min_time, repeats)
        else:
            def step():
                np.copyto(grads, g0)
                opt.update(params, grads, state)
            copy = best_time(lambda: np.copyto(grads, g0), min_time / 4, repeats)
            seconds = best_time(step, min_time, repeats) - copy
        out["times"][label] = seconds
    out["environment"] = {
        "threads": threads, "numba_threads": numba.get_num_threads() if numba else None,
        "numba_threading_layer": numba.threading_layer() if numba else None,
        "blas": [{k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
                 for d in backend.blas_info()],
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__,
                     "numba": numba.__version__ if numba else None}}
    print(json.dumps(out))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", default="5d07e62", help="the commit to compare with (default 5d07e62)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=1.0, help="seconds of timed steps per case")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None, help="write every round's times to this file")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.threads, args.min_time, args.repeats)
    rounds, load_before, load_after = before_after.alternate(
        args.before, args.rounds, __file__,
        ["--threads", args.threads, "--min-time", args.min_time, "--repeats", args.repeats])
    env = rounds["after"][0]["environment"]
    print(f"\nbefore: {args.before} ({rounds['before'][0]['gradfit']}); after: this tree ({ROOT})")
    print(f"threads {env['threads']} (numba {env['numba_threads']}, layer "
          f"{env['numba_threading_layer']}); BLAS {env['blas']}; versions {env['versions']}")
    print(before_after.load_line(load_before, load_after, args.rounds))
    print(f"\n{'float32, ms per step':<34}{'before: min   median    max':>28}"
          f"{'after: min   median    max':>28}{'after/before':>14}")
    for label, *_ in CASES:
        b = [w["times"][label] for w in rounds["before"]]
        a = [w["times"][label] for w in rounds["after"]]
        ms_b, ms_a = (before_after.spread([t * 1e3 for t in v], "8.3f") for v in (b, a))
        print(f"{label:<34}{ms_b:>28}{ms_a:>28}{statistics.median(a) / statistics.median(b):>14.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"before": args.before, "rounds": rounds,
                                               "load_average": [load_before, load_after]}, indent=1))


if __name__ == "__main__":
    main()
