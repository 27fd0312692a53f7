"""``fit`` on arrays in memory before and after issue 16's one data path, in alternating processes.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/array_fit_before_after.py --rounds 7 --threads 2

"Before" is the commit ``--before`` (default 5a81473: main before ``fit`` read its arrays
through `ArraySource` and the `Feed`; it converted all of x to the model's dtype once and
gathered each batch from that copy), checked out with ``git worktree add --detach`` into a
temporary folder and removed at the end; "after" is this tree as it is. Each round runs one
worker process per checkout, alternating which goes first; a worker times ``model.fit`` (verbose
0, the same seed, so the same batches) in its own checkout's code, best of ``--repeats``:

* digits, 64-128-64-10, Adam, batch 32, 3 epochs (1437 rows): small steps, where a fixed cost
  per batch (the source's gather, conversion and checks, the feed) shows most;
* 20,000 MNIST-shaped rows as float32, 784-512-512-10, Adam, batch 256, 1 epoch;
* the same rows as float64 for a float32 model: before, fit copied all of x to float32 first
  (63 MB here); after, each batch is converted as it is read.

It prints samples/s per case and checkout (min / median / max over the rounds) and after /
before of the medians, with the load average. Busy machines move these numbers: compare the two
columns of one run only.
"""
import argparse
import json
import os
import statistics
import time

import before_after
from before_after import ROOT
CASES = [  # (label, layers, rows, x dtype, batch, epochs)
    ("digits 64-128-64-10, batch 32", (64, 128, 64, 10), None, "float32", 32, 3),
    ("784-512-512-10 float32 x, batch 256", (784, 512, 512, 10), 20_000, "float32", 256, 1),
    ("784-512-512-10 float64 x, batch 256", (784, 512, 512, 10), 20_000, "float64", 256, 1),
]


def worker(threads, repeats):
    """Time every case with the gradfit found on PYTHONPATH; print one JSON line."""
    import numpy as np

    import gradfit
    from gradfit import backend
    backend.set_num_threads(threads)
    out = {"gradfit": os.path.dirname(gradfit.__file__), "samples_per_s": {}}
    for label, layers, rows, x_dtype, batch, epochs in CASES:
        if rows is None:
            (x, y), _ = gradfit.datasets.digits()
        else:
            rng = np.random.default_rng(0)
            x = rng.random((rows, layers[0]))
            y = rng.integers(0, layers[-1], rows)
        x = x.astype(x_dtype)

        def run(epochs):
            gradfit.set_random_seed(0)
            net = [gradfit.Input(shape=(layers[0],))]
            net += [gradfit.Dense(n, activation="relu") for n in layers[1:-1]]
            net.append(gradfit.Dense(layers[-1], activation="softmax"))
            model = gradfit.Sequential(net)
            model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
            t0 = time.perf_counter()
            model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0)
            return (time.perf_counter() - t0), int(model.train_state.opt["step"]) * batch
        run(1)                                   # warm up: imports, numba, BLAS buffers
        best = min(run(epochs)[0] for _ in range(repeats))
        out["samples_per_s"][label] = run(epochs)[1] / best
    print(json.dumps(out))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", default="5a81473",
                    help="the commit to compare with (default 5a81473)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="timed fits per case in a worker")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.threads, args.repeats)
    rounds, load_before, load_after = before_after.alternate(
        args.before, args.rounds, __file__, ["--threads", args.threads, "--repeats", args.repeats])
    print(f"\nbefore: {args.before}; after: this tree ({ROOT}); {args.threads} BLAS threads")
    print(before_after.load_line(load_before, load_after, args.rounds))
    print(f"\n{'samples/s (best of a worker)':<38}{'before: min  median   max':>30}"
          f"{'after: min  median   max':>30}{'after/before':>14}")
    for label, *_ in CASES:
        b = [w["samples_per_s"][label] for w in rounds["before"]]
        a = [w["samples_per_s"][label] for w in rounds["after"]]
        print(f"{label:<38}{before_after.spread(b, '9.0f'):>30}{before_after.spread(a, '9.0f'):>30}"
              f"{statistics.median(a) / statistics.median(b):>14.3f}")
    return 0


if __name__ == "__main__":
    main()
