"""Measure what the gradient noise estimate adds to a training step, at every batch size.

    python benchmarks/noise_overhead.py [--hidden 512,512] [--optimizer adam]
        [--batch-sizes 32,64,128,256,512,1024] [--steps 50] [--repeats 5] [--out overhead.json]

For each batch size B, one epoch of ``model.fit`` over B * steps synthetic MNIST-shaped examples
(784 inputs, 10 classes, float32, shuffle off), timed per step in four ways, interleaved within
every repeat so that machine load hits all alike, best of ``repeats``:

* ``plain``: no callback (the reference);
* ``every=10``, ``every=1``: with ``GradientNoiseScale(every=...)`` on its per-example route
  (one process): the per-example norms every 10th / every step; the loop's two O(P) dot
  products for |G_B|^2 are paid on every step once the callback is present;
* ``auto``: ``fit(batch_size="auto")`` with ``AdaptiveBatchSize`` held at B
  (``min_batch_size = max_batch_size = B``, its defaults otherwise: every=10): the whole
  machinery of the auto batch size (estimate, decision, learning-rate factor) at that batch.

Printed as ms/step for ``plain`` and the relative overhead of the others; ``--out`` writes the
same as JSON (with the settings, the BLAS threads and the load average) for the records.
Timings on a loaded machine move by several percent: compare within one run only.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402

from gradfit.backend import blas_info  # noqa: E402
from gradfit.callbacks import AdaptiveBatchSize, GradientNoiseScale  # noqa: E402
from gradfit.layers import Dense, Input  # noqa: E402
from gradfit.model import Sequential  # noqa: E402
from gradfit.utils import set_random_seed  # noqa: E402

MODES = ("plain", "every=10", "every=1", "auto")
DEFAULT_SIZES = "32,64,128,256,512,1024"


def setup(hidden, batch, steps, optimizer="adam", seed=0):
    """A compiled float32 784-hidden-10 model and batch * steps synthetic examples."""
    set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.random((batch * steps, 784), dtype=np.float32)
    y = rng.integers(0, 10, batch * steps)
    layers = [Input(shape=(784,))] + [Dense(h, activation="relu") for h in hidden]
    model = Sequential(layers + [Dense(10, activation="softmax")])
    model.compile(optimizer, "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)   # builds and warms up
    return model, x, y


def time_fit(model, x, y, batch, mode):
    """Seconds per step of one epoch of ``fit`` in ``mode`` (see the module docstring)."""
    if mode == "auto":
        size, cbs = "auto", [AdaptiveBatchSize(min_batch_size=batch, max_batch_size=batch)]
    else:
        size = batch
        cbs = [] if mode == "plain" else [GradientNoiseScale(every=int(mode.split("=")[1]))]
    t = time.perf_counter()
    model.fit(x, y, batch_size=size, epochs=1, verbose=0, callbacks=cbs, shuffle=False)
    return (time.perf_counter() - t) / (len(x) // batch)


def measure(hidden, sizes, steps, repeats, optimizer="adam") -> list[dict]:
    """One row per batch size: best seconds per step of every mode."""
    rows = []
    for b in sizes:
        model, x, y = setup(hidden, b, steps, optimizer)
        best = dict.fromkeys(MODES, np.inf)
        for _ in range(repeats):
            for mode in MODES:
                best[mode] = min(best[mode], time_fit(model, x, y, b, mode))
        rows.append({"batch_size": b, "seconds_per_step": best,
                     "overhead": {m: best[m] / best["plain"] - 1 for m in MODES[1:]}})
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", default="512,512", help="hidden widths (default 512,512: the "
                   "time-to-target 'same' network)")
    p.add_argument("--optimizer", default="adam")
    p.add_argument("--batch-sizes", default=DEFAULT_SIZES, help=f"default {DEFAULT_SIZES}")
    p.add_argument("--steps", type=int, default=50, help="steps per timed epoch (default 50)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=None, help="also write the results as JSON here")
    a = p.parse_args(argv)
    hidden = [int(h) for h in a.hidden.split(",")]
    sizes = [int(s) for s in a.batch_sizes.split(",")]
    if a.steps < 2 or a.repeats < 1 or min(sizes) < 2:
        p.error("--steps must be >= 2, --repeats >= 1 and every batch size >= 2")
    net = f"784-{'-'.join(map(str, hidden))}-10"
    print(f"{net}, float32, {a.optimizer}, {a.steps} steps, best of {a.repeats}; overhead per "
          "step against plain")
    print(f"{'B':>5} {'plain ms/step':>14}" + "".join(f"{m:>10}" for m in MODES[1:]))
    rows = []
    for b in sizes:
        row = measure(hidden, [b], a.steps, a.repeats, a.optimizer)[0]
        rows.append(row)
        print(f"{b:>5} {row['seconds_per_step']['plain'] * 1e3:>14.3f}"
              + "".join(f"{100 * row['overhead'][m]:>+9.1f}%" for m in MODES[1:]), flush=True)
    if a.out:
        record = {"network": net, "optimizer": a.optimizer, "dtype": "float32",
                  "steps": a.steps, "repeats": a.repeats, "rows": rows,
                  "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS",
                                                             "OPENBLAS_NUM_THREADS")},
                  "blas": blas_info(), "load_average": os.getloadavg()}
        tmp = a.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(record, f, indent=1, default=str)
        os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
