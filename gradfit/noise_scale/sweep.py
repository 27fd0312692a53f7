"""Steps and examples to reach a target, per batch size, with the best learning rate of a grid.

The measurement behind the critical batch size (McCandlish et al. 2018, Sec. 4 and App. A):
for each batch size B, train the same model (same initial weights, same data order seed) with
each learning rate of a grid; S(B) = the fewest optimisation steps with which any learning rate
reaches the target, E(B) = B S(B).  ``critical.fit_steps_examples`` then fits
(S/S_min - 1)(E/E_min - 1) = 1.

Target: a training loss, measured on a FIXED subset of the training set (``kind="loss"``), or a
validation accuracy (``kind="accuracy"``).  It is checked on a geometric schedule: after step s
the next check is at max(s + 1, ceil(s (1 + growth))), so S is over-estimated by at most
``growth`` (5 %) relative, and the checks cost O(log S) evaluations.

Search order and pruning: the first learning rate tried is the previous batch size's best (the
best learning rate grows with B), then its neighbours outwards; a run is stopped as soon as it
has taken as many steps as the best run so far (it cannot win), so a grid costs little more than
its best run times its length.  A run whose checked value is not finite, or whose loss exceeds
3x its first check, is stopped as diverged.  A batch size none of whose runs reach the target
within ``max_epochs`` is reported as not reached (``steps=None``).

The training loop checks ``model.stop_training`` only at epoch ends; a run must stop at the step
it reaches the target, so ``TargetWatch`` ends ``fit`` by raising ``_RunEnded``, caught here
(one process only: under MPI every rank would have to raise at the same step, which they would,
but the sweep is not meant for MPI).
"""
from __future__ import annotations

import math
import time
import warnings

import numpy as np

from gradfit.callbacks.base import Callback
from gradfit.callbacks.gradient_noise_scale import GradientNoiseScale
from gradfit.train.evaluation import evaluate


class TargetWatch(Callback):
    """Evaluate on a geometric step schedule; end the run at the target, the budget or divergence."""

    def __init__(self, x, y, kind, target, max_steps, growth=0.05):
        super().__init__()
        self.x, self.y, self.kind, self.target = x, y, kind, float(target)
        self.max_steps, self.growth = int(max_steps), float(growth)
        self.step, self.next_check, self.checks = 0, 1, []
        self.ended = None   # (why, step) once the run is over: "reached", "diverged" or "budget"

    def _end(self, why, step):
        self.ended = (why, step)
        self.model.stop_training = True   # fit ends after this batch (Keras 3 semantics)

    def _value(self):
        logs = evaluate(self.model, self.x, self.y, batch_size=1024)
        return logs["loss"] if self.kind == "loss" else logs["accuracy"]

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        s = self.step
        if s >= self.next_check or s >= self.max_steps:
            v = self._value()
            self.checks.append((s, v))
            if not math.isfinite(v) or (self.kind == "loss" and v > 3.0 * max(self.checks[0][1], 1e-12)):
                return self._end("diverged", s)
            if (v <= self.target) if self.kind == "loss" else (v >= self.target):
                return self._end("reached", s)
            self.next_check = max(s + 1, math.ceil(s * (1.0 + self.growth)))
        if s >= self.max_steps:
            self._end("budget", s)


def run_to_target(make_model, x, y, batch_size, watch, max_epochs, callbacks=()):
    """Train a fresh model until ``watch`` ends it; (why, steps, seconds)."""
    model = make_model()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # a NaN loss stops fit: "diverged"
        model.fit(x, y, batch_size=batch_size, epochs=max_epochs, verbose=0,
                  callbacks=[*callbacks, watch])
    if watch.ended is not None:
        why, steps = watch.ended
    else:   # fit ended by itself: out of epochs, or stopped by a non-finite loss
        why, steps = ("diverged" if model.stop_training else "budget"), watch.step
    return why, steps, time.perf_counter() - t0


def _order(lrs, start):
    """Indices of lrs from ``start`` outwards: start, start+1, start-1, start+2, ..."""
    out, k = [start], 1
    while len(out) < len(lrs):
        for j in (start + k, start - k):
            if 0 <= j < len(lrs):
                out.append(j)
        k += 1
    return out


def sweep(make_model, x, y, batch_sizes, lrs, eval_xy, kind, target, max_epochs,
          lr_power=0.0, growth=0.05, noise_every=10, log=print):
    """The sweep described in the module docstring.

    make_model(lr) -> a compiled fresh model (same initial weights every call: seed inside).
    lrs: the grid at the smallest batch size; at batch size B each is multiplied by
        (B / min(batch_sizes))^lr_power (0: the same grid, 0.5: sqrt scaling, 1: linear).
    Returns (best, runs): ``best`` one dict per batch size (steps None where not reached),
    ``runs`` every run tried.
    """

    lrs = sorted(float(v) for v in lrs)
    b0 = min(batch_sizes)
    n = len(x)
    best_all, runs, start = [], [], len(lrs) // 2
    for b in batch_sizes:
        budget = max_epochs * (n // b)
        best = None
        for i in _order(lrs, start):
            lr = lrs[i] * (b / b0) ** lr_power
            cap = budget if best is None else min(budget, best["steps"])
            watch = TargetWatch(*eval_xy, kind, target, cap, growth)
            noise = GradientNoiseScale(every=noise_every, min_steps=3)
            why, steps, secs = run_to_target(lambda: make_model(lr), x, y, b, watch, max_epochs, [noise])
            if why == "budget" and best is not None and steps >= best["steps"]:
                why = "pruned"       # as slow as the best so far: stopped, it cannot win
            bs = [v for v in noise.history["b_simple"] if v is not None]
            run = {"batch_size": b, "lr": lr, "outcome": why, "steps": steps, "seconds": round(secs, 2),
                   "last_value": watch.checks[-1][1] if watch.checks else None,
                   "b_simple_at_end": bs[-1] if bs else None,
                   "b_simple_mean": float(np.mean(bs)) if bs else None}
            runs.append(run)
            log(f"  B={b:<5} lr={lr:<9.4g} {why:<9} steps={steps:<6} value={run['last_value'] if run['last_value'] is None else round(run['last_value'], 4)} ({secs:.1f} s)")
            if why == "reached" and (best is None or steps < best["steps"]):
                best = {**run, "lr_index": i}
        if best is None:
            best_all.append({"batch_size": b, "lr": None, "outcome": "not reached", "steps": None,
                             "examples": None, "b_simple_at_end": None, "b_simple_mean": None,
                             "lr_at_grid_edge": False})
            continue
        start = best["lr_index"]
        best_all.append({**{k: v for k, v in best.items() if k != "lr_index"},
                         "examples": b * best["steps"],
                         "lr_at_grid_edge": best["lr_index"] in (0, len(lrs) - 1) and len(lrs) > 1})
    return best_all, runs
