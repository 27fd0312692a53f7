"""Exact evaluation: loss and metrics summed over every example, then divided by the count.

Under MPI each rank evaluates a contiguous shard of the data (shards may differ in size by
one; no example is padded or repeated) and the sums are reduced, so every rank gets the same,
exact value.
"""
from __future__ import annotations

import numpy as np

from ..backend import xp
from ..checks import check_int


def evaluate(model, x, y, batch_size=32, prefix="") -> dict:
    """{prefix+"loss": ..., prefix+metric: ...} over all of (x, y), exactly averaged."""
    comm = model.comm
    n = len(x)
    batch_size = check_int("batch_size", batch_size, 1)
    if n == 0:
        what = "validation" if prefix == "val_" else "evaluation"
        raise ValueError(f"cannot evaluate on an empty {what} set (0 examples); "
                         "pass at least one example")
    bounds = np.linspace(0, n, comm.size + 1).astype(int)
    lo, hi = bounds[comm.rank], bounds[comm.rank + 1]
    sums = np.zeros(1 + len(model.metrics), dtype=np.float64)
    for s in range(lo, hi, batch_size):
        e = min(s + batch_size, hi)
        xb, yb = xp().asarray(x[s:e]), xp().asarray(y[s:e])
        y_pred = model.forward(xb, training=False)
        value, _ = model.batch_loss(y_pred, yb, denom=1)
        sums[0] += value
        for i, (_, metric) in enumerate(model.metrics):
            sums[1 + i] += metric.batch_sum(y_pred, yb)
    sums = comm.allreduce_(sums)
    # the weight penalties once (the same for every example), as Keras adds them to the loss
    logs = {prefix + "loss": float(sums[0] / n) + model.regularization()}
    for i, (name, _) in enumerate(model.metrics):
        logs[prefix + name] = float(sums[1 + i] / n)
    return logs
