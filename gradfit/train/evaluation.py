"""Exact evaluation and prediction over any source: sums over every example, then one division.

Evaluation reads a source (`gradfit.datasets.sources`) batch by batch, read ahead by a
`Prefetcher`, and sums the loss and each metric over the examples; under MPI the sums are
reduced once, so every rank gets the same, exact value. The work is shared without padding or
repeating an example:

* rows (arrays, memmaps, packed shards): each rank reads a contiguous share of the rows (shares
  differ by at most one row), in batches of ``batch_size``;
* a PyDataset with a length: rank r evaluates batches r, r + N, ...;
* a stream (generator, iterable): every rank iterates it and evaluates its slice of each
  batch. ``steps`` batches, or until it runs out; with ``steps`` the stream continues from
  ``start`` (Keras's ``validation_steps``: the next evaluation goes on where this one stopped).

Prediction reads every row on every rank (each rank returns all outputs), in order.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..backend import to_numpy, xp
from ..checks import check_int
from ..datasets import DatasetError, Exhausted, Prefetcher, Request
from .batching import rank_bounds
from .data import batch_targets, open_source


def evaluate(model, x, y=None, batch_size=32, prefix="", steps=None) -> dict:
    """{prefix+"loss": ..., prefix+metric: ...} over all of ``x`` (arrays with ``y``, or any
    input `fit` takes), exactly averaged."""
    source = open_source(model, x, y, name="validation x" if prefix == "val_" else "x")
    return evaluate_source(model, source, batch_size, prefix, steps)[0]


def evaluate_source(model, source, batch_size=32, prefix="", steps=None, start=0, label=None):
    """(logs, the stream position after it) of an evaluation of a bound ``source``.

    ``label(k)`` names batch k in messages (default ``"evaluation, batch k"``)."""
    comm = model.comm
    batch_size = check_int("batch_size", batch_size, 1)
    if steps is not None:
        steps = check_int("steps" if not prefix else "validation_steps", steps, 1)
    label = label or (lambda k: f"{'validation' if prefix else 'evaluation'}, batch {k + 1}")
    requests, whole = _requests(source, batch_size, steps, start, comm, label)
    sums = np.zeros(2 + len(model.metrics), dtype=np.float64)     # [count, loss, metrics]
    position = start
    with Prefetcher(source.fetch, requests, **source.prefetch) as ahead:
        while True:
            try:
                _, (xb, yb) = next(ahead)
            except StopIteration:
                break
            except Exhausted:
                position = _ran_out(prefix, steps, position - start, source)
                break
            position += 1
            if whole:                       # a whole batch: this rank's slice of it
                lo, hi = rank_bounds(len(xb), comm.rank, comm.size)
                xb, yb = xb[lo:hi], yb[lo:hi]
            _add(model, sums, xb, yb)
    sums = comm.allreduce_(sums)
    n = sums[0]
    if n == 0:
        what = "validation_data" if prefix == "val_" else "the evaluation data"
        raise DatasetError(f"{what} yielded no batch: nothing to evaluate on (a generator is used "
                           f"up after one pass: pass a list, a PyDataset or an endless generator "
                           f"with {'validation_steps' if prefix else 'steps'})")
    # the weight penalties once (the same for every example), as Keras adds them to the loss
    logs = {prefix + "loss": float(sums[1] / n) + model.regularization()}
    for i, (name, _) in enumerate(model.metrics):
        logs[prefix + name] = float(sums[2 + i] / n)
    return logs, position


def _requests(source, batch_size, steps, start, comm, label):
    """(this rank's requests, whether each returns a whole batch to slice)."""
    if source.unit == "row":      # the first `steps` batches' rows, shared between the ranks
        n = len(source) if steps is None else min(len(source), steps * batch_size)
        lo, hi = rank_bounds(n, comm.rank, comm.size)
        reqs = (Request(0, k, slice(s, min(s + batch_size, hi)), label(k))
                for k, s in enumerate(range(lo, hi, batch_size)))
        return reqs, False
    if source.unit == "batch":
        total = min(source.num_batches, steps or source.num_batches)
        return (Request(0, i, i, label(i)) for i in range(comm.rank, total, comm.size)), False
    count = range(steps) if steps is not None else _count()
    return (Request(0, k, start + k, label(k)) for k in count), True


def _count():
    k = 0
    while True:
        yield k
        k += 1


def _add(model, sums, xb, yb) -> None:
    """Add one batch's count, loss sum and metric sums (inference mode)."""
    if len(xb) == 0:
        return
    xb = xp().asarray(xb.reshape(len(xb), model.input_dim))
    yb = xp().asarray(batch_targets(model, yb))
    y_pred = model.forward(xb, training=False)
    value, _ = model.batch_loss(y_pred, yb, denom=1)
    sums[0] += len(xb)
    sums[1] += value
    for i, (_, metric) in enumerate(model.metrics):
        sums[2 + i] += metric.batch_sum(y_pred, yb)


def _ran_out(prefix, steps, done, source) -> int:
    """A stream ended: the next evaluation iterates it again (position 0)."""
    if steps is not None and done:
        what = "validation_data" if prefix else "the evaluation data"
        warnings.warn(f"{what} ran out of data after {done} of {steps} batches; the next "
                      f"evaluation iterates it again", stacklevel=3)
    return 0


def predict(model, x, batch_size=32, steps=None) -> np.ndarray:
    """The network's outputs for every row of ``x`` (any input `fit` takes; targets, if any,
    are ignored), in order, computed in batches in inference mode (dropout off)."""
    batch_size = check_int("batch_size", batch_size, 1)
    if steps is not None:
        steps = check_int("steps", steps, 1)
    source = open_source(model, x, name="x", targets=False)
    out = None
    if source.unit == "row":      # written in place: the outputs are held once
        n = len(source) if steps is None else min(len(source), steps * batch_size)
        out = np.empty((n, model.output_dim), dtype=model.dtype)
        reqs = (Request(0, k, slice(s, min(s + batch_size, n)), f"predict, batch {k + 1}")
                for k, s in enumerate(range(0, n, batch_size)))
    elif source.unit == "batch":
        total = min(source.num_batches, steps or source.num_batches)
        reqs = (Request(0, i, i, f"predict, batch {i + 1}") for i in range(total))
    else:
        reqs = (Request(0, k, k, f"predict, batch {k + 1}")
                for k in (range(steps) if steps is not None else _count()))
    parts, done = [], 0
    with Prefetcher(source.fetch, reqs, **source.prefetch) as ahead:
        while True:
            try:
                _, (xb, _) = next(ahead)
            except (StopIteration, Exhausted):
                break
            y_pred = to_numpy(model.forward(xp().asarray(xb.reshape(len(xb), model.input_dim)),
                                            training=False))
            if out is not None:
                out[done:done + len(xb)] = y_pred
            else:                 # the layer's buffer is reused by the next batch: copy
                parts.append(np.array(y_pred, dtype=model.dtype))
            done += len(xb)
    if out is not None:
        return out
    if not parts:
        raise DatasetError("x yielded no batch: nothing to predict")
    return np.concatenate(parts)
