"""Reading a batch from a packed directory, before and after the read loop took its descriptor
once per shard, in alternating processes (`before_after.py`).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/packed_reads_before_after.py \\
        /scratch/big-packed --rounds 5

A worker opens the packed directory (``benchmarks/stream_make.py`` writes one) with its own
checkout's gradfit, draws the full-permutation order of an epoch and times
``source.fetch`` (the prefetch thread's work: read the rows, convert them) for ``--batches``
batches of 256 rows in that order, best of ``--repeats`` passes over different batches;
milliseconds per batch. The rows are expected in the page cache (run it twice); a batch in
random order is one positional read per row.
"""
import argparse
import json
import os
import statistics
import time

import before_after

BATCH = 256


def worker(packed, batches, repeats):
    import numpy as np

    from gradfit.datasets import open as open_packed
    from gradfit.datasets.sources import Request
    source = open_packed(packed, order="full", verify=False, workers=0)
    order = source.epoch_order(np.random.default_rng(0), True)
    best = float("inf")
    for r in range(repeats):
        first = r * batches * BATCH
        t0 = time.perf_counter()
        for k in range(batches):
            lo = first + k * BATCH
            source.fetch(Request(0, k, order[lo:lo + BATCH]))
        best = min(best, (time.perf_counter() - t0) / batches)
    print(json.dumps({"ms_per_batch": best * 1e3}))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("packed")
    ap.add_argument("--before", default="63ea2f4",
                    help="the commit to compare with (default 63ea2f4: before the change)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.packed, args.batches, args.repeats)
    rounds, load_before, load_after = before_after.alternate(
        args.before, args.rounds, __file__,
        [os.path.abspath(args.packed), "--batches", args.batches, "--repeats", args.repeats])
    print(f"\nbefore: {args.before}; after: this tree; batch {BATCH}, full random order, "
          f"best of {args.repeats} x {args.batches} batches per worker")
    print(before_after.load_line(load_before, load_after, args.rounds))
    b = [w["ms_per_batch"] for w in rounds["before"]]
    a = [w["ms_per_batch"] for w in rounds["after"]]
    print(f"ms per batch   before (min median max) {before_after.spread(b, '6.2f')}   "
          f"after {before_after.spread(a, '6.2f')}   "
          f"after/before {statistics.median(a) / statistics.median(b):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
