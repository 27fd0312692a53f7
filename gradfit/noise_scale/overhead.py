"""Measure what GradientNoiseScale adds to a training step.

    python -m gradfit.noise_scale.overhead [--hidden 128] [--batch-sizes 32,128,512] [--repeats 5]

For each batch size: ``model.fit`` over synthetic MNIST-shaped data (784 inputs, 10 classes,
float32, SGD) without the callback, with ``every=10`` (the default) and with ``every=1``; the
best of ``repeats`` timings of each (interleaved, so machine load hits all three alike), per step.
With the callback the loop also computes two O(P) dot products per step (``model.grad_norms``).
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def setup(hidden, batch, steps, seed=0):
    """A compiled float32 784-hidden-10 model and batch * steps synthetic examples."""
    from gradfit import Dense, Input, Sequential, set_random_seed

    set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.random((batch * steps, 784), dtype=np.float32)
    y = rng.integers(0, 10, batch * steps)
    layers = [Input(shape=(784,))] + [Dense(h, activation="relu") for h in hidden]
    model = Sequential(layers + [Dense(10, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)   # builds and warms up
    return model, x, y


def time_fit(model, x, y, batch, every):
    """Seconds per step of one epoch of ``fit`` (every=None: no callback)."""
    from gradfit.callbacks import GradientNoiseScale

    cbs = [] if every is None else [GradientNoiseScale(every=every)]
    t = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, callbacks=cbs, shuffle=False)
    return (time.perf_counter() - t) / (len(x) // batch)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", default="128")
    p.add_argument("--batch-sizes", default="32,128,512")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args(argv)
    hidden = [int(h) for h in a.hidden.split(",")]
    print(f"784-{'-'.join(map(str, hidden))}-10, float32, SGD, {a.steps} steps, best of {a.repeats}")
    print(f"{'B':>5} {'plain ms/step':>14} {'every=10':>10} {'every=1':>10}")
    for b in (int(s) for s in a.batch_sizes.split(",")):
        model, x, y = setup(hidden, b, a.steps)
        best = {None: np.inf, 10: np.inf, 1: np.inf}
        for _ in range(a.repeats):
            for every in best:
                best[every] = min(best[every], time_fit(model, x, y, b, every))
        base = best[None]
        print(f"{b:>5} {base * 1e3:>14.3f} {100 * (best[10] / base - 1):>+9.1f}% {100 * (best[1] / base - 1):>+9.1f}%")


if __name__ == "__main__":
    main()
