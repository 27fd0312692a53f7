"""GradientNoiseScale: log B_simple = tr(Sigma)/|G|^2 during ordinary training.

The training step hands over the gradient norms it already has: in ``on_train_begin`` the
callback sets ``model.train_state.want_grad_norms``, and at ``on_train_batch_end`` it finds
``model.train_state.grad_norms`` =
{"local_sq": |G_local|^2 (the mean gradient over this rank's slice), "global_sq": |G_B|^2 (the
mean over the global batch, after the Allreduce), "b_local", "b_global"}, computed before the
optimizer step (so it is the true gradient even if the optimizer overwrites ``model.grads``).
Two routes (``method="auto"`` picks by b_local < b_global):

* **data parallel** (``"two_batch"``, the paper's free estimate, McCandlish et al. 2018 App. A.1):
  B_small = the per-rank batch, B_big = the global batch.  The ranks' |G_local|^2 are averaged by
  one allreduce of 3 numbers; with uneven slices E[mean_r |G_r|^2] = |G|^2 + tr(Sigma) mean_r(1/b_r),
  so B_small is the harmonic mean of the b_r.  No per-example work, any layer type.
* **one process** (``"per_example"``): exact per-example squared norms of the Dense layers from
  ``model.layer_io()`` (x (B, n_in) and dz (B, n_out), the gradient of the batch-MEAN loss, so the
  per-example gradient is dz * denom, denom = the global batch),
  |g_i|^2 = sum_layers (|x_i|^2 + 1) |dz_i|^2 denom^2, and |G_B|^2 = ``grad_norms["global_sq"]``;
  one batch's unbiased |G|^2 and tr(Sigma) (``gradfit.noise_scale.exact_estimates``).
  Under MPI this route pools the GLOBAL batch: one allreduce of [sum_i |g_i|^2, rows] over the
  ranks, with |G_B|^2 of the global batch, gives exactly the estimate one process computes on
  the same global batch (up to the order of a float64 sum), so the value, and any decision
  taken from it (``AdaptiveBatchSize``), does not depend on the number of ranks.

Both are folded into the separate EMAs of ``NoiseScaleEstimator`` (ema=0.95, bias-corrected).
A measurement whose norms are not finite (an overflow in float32) is skipped, with one warning
per ``fit`` naming the step and the fix; the estimate keeps its earlier value.
Without ``train_state.grad_norms`` from this step (a model driven by hand, not by ``fit``), |G_B|^2
is recomputed from (x, dz) as before (``mean_grad_sq_norm``).

Overhead per measured step: the two-batch route, an O(1) allreduce; the per-example route,
O(B (n_in + n_out)) per Dense layer (two row-wise dot products).  The loop's two O(P) dot
products are paid on every step once the callback is present.  Measured with
``OMP_NUM_THREADS=1 python benchmarks/noise_overhead.py --repeats 7 --steps 60`` (one process,
float32 SGD, 1 BLAS thread, best of 7, 2-core machine), per step against no callback:

    784-128-10       B=32  every=10 +8 %  every=1 +25 %
                     B=128 every=10 +5 %  every=1 +12 %
                     B=512 every=10  0 %  every=1  +5 %
    784-512-512-10   B=32, 128: within the timing noise (< 3 %) at every=1 and every=10

Recomputing |G_B|^2 from (x, dz), as before the loop handed it over, measured +48..51 % at
every=1 on 784-128-10 (Adam, 2 BLAS threads).

Only Dense parameters count on the per-example route: its |g_i|^2 is over the layers that
``layer_io`` lists, and ``global_sq`` over the whole flat buffer; they agree for networks of Dense
layers (every parametric gradfit layer today).  A layer with parameters but no ``io`` would make
them disagree (none exists).

Values: ``self.history`` = {"step", "b_simple" (None while unavailable), "g_sq", "trace_sigma"},
``self.b_simple`` and ``self.status``; at each epoch end ``logs["b_simple"]``,
``logs["noise_g_sq"]`` and ``logs["noise_trace_sigma"]`` (NaN while not available), so
``History`` records one value per epoch.
"""
from __future__ import annotations

import math
import warnings

import numpy as np


from gradfit.backend import xp
from gradfit.callbacks.base import Callback, check_int
from gradfit.noise_scale.estimator import NoiseScaleEstimator, two_batch_estimates
from gradfit.noise_scale.per_example import (
    estimates_from_sums,
    exact_estimates,
    mean_grad_sq_norm,
    per_example_grad_sq_norms,
)

METHODS = ("auto", "two_batch", "per_example")


class GradientNoiseScale(Callback):
    """Measure the simple gradient noise scale B_simple (McCandlish et al. 2018) while training.

    Args:
        ema: beta of the EMAs of tr(Sigma) and |G|^2 (default 0.95: about 20 measured steps).
        min_steps: measured steps before a value is reported (default 10).
        every: measure every ``every`` training steps (default 10).
        use_bias: "auto" (read each Dense layer's ``use_bias``), a bool, or one bool per layer.
        log_key: the key in the epoch logs (default "b_simple").
        method: "auto" (two_batch under data parallelism, else per_example), "two_batch" or
            "per_example" (see the module docstring).

    ``on_train_begin`` starts afresh (a resumed run restores ``set_state`` after it).
    """

    def __init__(self, ema: float = 0.95, min_steps: int = 10, every: int = 10,
                 use_bias="auto", log_key: str = "b_simple", method: str = "auto"):
        super().__init__()
        self.every = check_int("GradientNoiseScale", "every", every, minimum=1)
        if method not in METHODS:
            raise ValueError(f"GradientNoiseScale: method must be one of {METHODS}, got {method!r}")
        self.method = method
        # b_small/b_big are passed per update (two_batch) or unused (per_example estimates).
        self.estimator = NoiseScaleEstimator(1, 2, ema=ema, min_steps=min_steps)
        self.use_bias = use_bias
        self.log_key = log_key
        self._norms_before = None
        self._reset()

    def _reset(self):
        self.estimator.reset()
        self._step = 0
        self.history = {"step": [], "b_simple": [], "g_sq": [], "trace_sigma": []}
        self.route = None    # the route of the last measurement: "two_batch" or "per_example"
        self.skipped = 0     # measurements left out because their norms were not finite

    def on_train_begin(self, logs=None):
        self._reset()
        state = self._train_state()
        if state is not None:     # every train_step now sets state.grad_norms
            state.want_grad_norms = True

    def _train_state(self):
        return getattr(self.model, "train_state", None)

    def _current_norms(self):
        state = self._train_state()
        return None if state is None else state.grad_norms

    def _biases(self):
        if self.use_bias != "auto":
            return self.use_bias
        layers = [l for l in getattr(self.model, "layers", []) if hasattr(l, "io")]
        return [bool(getattr(l, "use_bias", True)) for l in layers] or True

    def on_train_batch_begin(self, batch, logs=None):
        # train_step assigns a NEW dict every step: identity tells this step's norms from stale ones
        self._norms_before = self._current_norms()

    def _fresh_norms(self):
        norms = self._current_norms()
        return norms if norms is not None and norms is not self._norms_before else None

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        norms = self._fresh_norms()
        self._norms_before = norms
        if (self._step - 1) % self.every:
            return
        comm = getattr(self.model, "comm", None)
        parallel = comm is not None and getattr(comm, "size", 1) > 1
        route = self.method
        if route == "auto":
            split = norms is not None and norms["b_local"] < norms["b_global"]
            route = "two_batch" if split else "per_example"
        if route == "two_batch":
            est = self._two_batch(norms, comm if parallel else None)
        else:
            est = self._per_example(norms, comm if parallel else None)
        if est is None:
            return
        if not all(math.isfinite(v) for v in est):
            self._skip(est)
            return
        self.route = route
        value = self.estimator.update_estimates(*est)
        h = self.history
        h["step"].append(self._step)
        h["b_simple"].append(value)
        h["g_sq"].append(self.estimator.g_sq)
        h["trace_sigma"].append(self.estimator.trace_sigma)

    def _two_batch(self, norms, comm):
        if norms is None or norms["b_local"] >= norms["b_global"]:
            got = None if norms is None else (norms["b_local"], norms["b_global"])
            raise ValueError(
                "GradientNoiseScale(method='two_batch') needs data-parallel training (local batch < "
                f"global batch, from train_state.grad_norms set by fit), got (b_local, b_global)={got}; "
                "use method='auto' or 'per_example' in one process"
            )
        # [sum_r |G_r|^2, sum_r 1/b_r, ranks]: one allreduce, the same result on every rank
        v = np.array([norms["local_sq"], 1.0 / norms["b_local"], 1.0], dtype=np.float64)
        if comm is not None:
            _allreduce_small(comm, v)
        if not (math.isfinite(v[0]) and math.isfinite(norms["global_sq"])):
            return v[0], norms["global_sq"]          # skipped by the caller, on every rank
        b_small = v[2] / v[1]          # harmonic mean of the per-rank batches
        return two_batch_estimates(v[0] / v[2], norms["global_sq"], b_small, float(norms["b_global"]))

    def _per_example(self, norms, comm):
        ios = list(self.model.layer_io())
        bias = self._biases()
        if norms is None:
            return self._per_example_by_hand(ios, bias, comm)
        # The global batch pooled: [sum_i |g_i|^2 over this rank's rows, rows], one allreduce,
        # then one batch's estimates with |G_B|^2 of the global batch (after the Allreduce).
        sq = per_example_grad_sq_norms(ios, scale=norms["b_global"], use_bias=bias)
        v = np.array([float(xp().sum(sq, dtype=xp().float64)), float(sq.shape[0])])
        if comm is not None:
            _allreduce_small(comm, v)
        total, b, g_b_sq = float(v[0]), int(v[1]), float(norms["global_sq"])
        if b < 2:      # one example carries no variance information
            return None
        if not (math.isfinite(total) and math.isfinite(g_b_sq)):
            return total, g_b_sq                     # skipped by the caller, on every rank
        est = estimates_from_sums(total, b, g_b_sq)
        return est.g_sq, est.trace_sigma

    def _per_example_by_hand(self, ios, bias, comm):
        """A model driven by hand (no ``train_state.grad_norms``): |G_B|^2 recomputed from
        (x, dz) of this rank's rows; each rank estimates and the estimates are averaged."""
        b = int(ios[0][0].shape[0])
        valid = b >= 2   # one example carries no variance information
        g1 = tr1 = 0.0
        if valid:
            # dz as given (scale 1); |G|^2 and tr(Sigma) are scaled by rows^2 below
            sq = per_example_grad_sq_norms(ios, use_bias=bias)
            est = exact_estimates(sq, mean_grad_sq_norm(ios, use_bias=bias))
            g1, tr1 = est.g_sq, est.trace_sigma
        # One collective for [examples, ranks with an estimate, sums of their estimates]: every
        # rank calls it every measured step (no rank may skip), and all ranks end up equal.
        v = np.array([b, float(valid), g1, tr1], dtype=np.float64)
        if comm is not None:
            _allreduce_small(comm, v)
        n_valid = v[1]
        if n_valid == 0:
            return None
        scale = v[0] ** 2
        return float(v[2] / n_valid * scale), float(v[3] / n_valid * scale)

    def _skip(self, est):
        """Leave out a measurement with non-finite norms; say so once per ``fit``."""
        self.skipped += 1
        if self.skipped == 1:
            warnings.warn(
                f"GradientNoiseScale: the gradient norms of step {self._step} are not finite "
                f"({est[0]!r}, {est[1]!r}), so this measurement is left out and B_simple keeps its earlier value (later ones are left out silently, "
                "counted in .skipped); the per-example norms overflowed: use dtype='float64', "
                "scale the inputs, or lower the learning rate", RuntimeWarning, stacklevel=2)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        value = self.b_simple
        # NaN, not None, in the logs: History keeps one entry per epoch and CSV/progress
        # loggers format numbers; ``self.b_simple`` / ``self.status`` say why it is missing.
        logs[self.log_key] = math.nan if value is None else value
        g_sq, trace = self.estimator.g_sq, self.estimator.trace_sigma
        logs["noise_g_sq"] = math.nan if g_sq is None else g_sq
        logs["noise_trace_sigma"] = math.nan if trace is None else trace

    # -- values and state -------------------------------------------------------------------
    @property
    def b_simple(self):
        """The current smoothed B_simple, or None (see ``status``)."""
        return self.estimator.b_simple

    @property
    def status(self) -> str:
        """"ok", or why ``b_simple`` is None."""
        return self.estimator.status

    def get_state(self) -> dict:
        return {"step": self._step, "estimator": self.estimator.get_state(),
                "history": {k: list(v) for k, v in self.history.items()}}

    def set_state(self, state: dict) -> None:
        self._step = int(state["step"])
        self.estimator.set_state(state["estimator"])
        self.history = {k: list(v) for k, v in state["history"].items()}


def _allreduce_small(comm, v):
    """Sum a few float64 numbers over the ranks in place (allreduce_array_ where the comm has it)."""
    reduce = getattr(comm, "allreduce_array_", None) or comm.allreduce_
    reduce(v)
    return v
