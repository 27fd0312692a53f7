"""Where a gradfit training step spends its time: per layer, forward and backward, the loss
and the optimizer update, timed inside real steps.

Each of ``steps`` steps is `gradfit.train.step.train_step` itself, the step ``fit`` takes,
with a clock read between the parts (its ``mark`` argument); the table gives each part's
median over the steps, so the parts add up to about a step.  Timed inside the step, a part
pays for the memory traffic around it: a layer's weights are read from DRAM when the
previous update pushed them out of the caches, which is why the same product timed alone
(``matmul``, below) is faster at small batches.

``matmul``: the step's matrix products alone, each timed in a loop on the same shapes
(``np.matmul(..., out=)``: forward ``x W`` per Dense layer, backward ``x^T dz`` and, except
for the first layer, ``dz W^T`` in the faster of its two forms), with warm caches: what
BLAS needs at best.
"""
from __future__ import annotations

import time

import numpy as np

from ..backend import xp
from ..train.step import train_step
from .timing import time_call
from .training import gradfit_model, make_data


def profile_step(sizes, kind, batch, steps=60) -> dict:
    """{"rows": [(part, median seconds)], "total": median step seconds, "sum_of_parts",
    "matmul": seconds of the products alone} for a gradfit step of this network."""
    model = gradfit_model(sizes, kind)
    x, y = make_data(sizes, kind, batch)
    model.train_on_batch(x, y)
    xd = xp().asarray(x)
    yd = xp().asarray(model.check_targets(y, len(x)))
    times: dict = {}
    totals = []
    clock = time.perf_counter
    for _ in range(max(2, steps) + 2):  # two untimed steps first
        marks = [("start", clock())]
        train_step(model, model.train_state, xd, yd, batch,
                   mark=lambda name: marks.append((name, clock())))
        for (_, t0), (name, t1) in zip(marks[:-1], marks[1:]):
            times.setdefault(name, []).append(t1 - t0)
        totals.append(marks[-1][1] - marks[0][1])
    rows = [(name, float(np.median(ts[2:]))) for name, ts in times.items()]
    return {"network": "-".join(map(str, sizes)), "batch": batch, "steps": steps,
            "rows": rows, "sum_of_parts": sum(s for _, s in rows),
            "total": float(np.median(totals[2:])), "matmul": _matmul_time(sizes, batch)}


def _matmul_time(sizes, batch, repeats=5) -> float:
    """Seconds of the step's matrix products alone (np.matmul with out=, float32, warm)."""
    rng = np.random.default_rng(0)
    total = 0.0

    def best(fn):
        return time_call(fn, min_time=0.02 * repeats, repeats=repeats)
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        x = rng.standard_normal((batch, a)).astype(np.float32)
        w = rng.standard_normal((a, b)).astype(np.float32)
        z = np.empty((batch, b), np.float32)
        dw = np.empty((a, b), np.float32)
        total += best(lambda: np.matmul(x, w, out=z))
        total += best(lambda: np.matmul(x.T, z, out=dw))
        if i > 0:  # dz W^T: directly or as (W dz^T)^T, whichever is faster (see Dense)
            dx, dx_t = np.empty((batch, a), np.float32), np.empty((a, batch), np.float32)
            total += min(best(lambda: np.matmul(z, w.T, out=dx)),
                         best(lambda: (np.matmul(w, z.T, out=dx_t), np.copyto(dx, dx_t.T))))
    return total


def format_profile(prof: dict) -> str:
    lines = [f"Profile of a gradfit step, {prof['network']} at batch {prof['batch']}, parts timed "
             f"inside {prof['steps']} steps (median step {prof['total'] * 1e3:.3f} ms; sum of the "
             f"parts' medians {prof['sum_of_parts'] * 1e3:.3f} ms; the same matrix products "
             f"alone, warm caches: {prof['matmul'] * 1e3:.3f} ms)"]
    for name, sec in prof["rows"]:
        lines.append(f"  {name:<48}{sec * 1e3:>10.3f} ms {100 * sec / prof['total']:>6.1f}%")
    return "\n".join(lines)
