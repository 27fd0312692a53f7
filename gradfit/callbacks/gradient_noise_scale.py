"""GradientNoiseScale: log B_simple = tr(Sigma)/|G|^2 during ordinary training.

Each training step (every ``every`` steps) it reads ``model.layer_io()``: per Dense layer the
last batch's input x (B, n_in) and dz (B, n_out), the gradient of the batch-MEAN loss w.r.t.
the pre-activation output, so the per-example gradient is dz * denom, denom = the global batch
size (gradfit's data-parallel convention: every rank divides by it).  From them:

* the exact per-example squared norms |g_i|^2 = sum_layers (|x_i|^2 + 1) |dz_i|^2 * denom^2,
* the squared norm of their mean |G_B|^2 = |x^T dz|^2 + |sum_i dz_i|^2 (times (denom/B)^2),
* one batch's unbiased |G|^2 and tr(Sigma) (``gradfit.noise_scale.exact_estimates``),
* folded into the separate EMAs of ``NoiseScaleEstimator`` (ema=0.95, bias-corrected).

Under MPI each rank estimates from its own batch and the estimates are averaged over ranks
(one allreduce of 4 numbers, which also gives the global batch size), so every rank holds the
same value; rank 0 reports.

Overhead per measured step, per Dense layer: O(B (n_in + n_out)) for the per-example norms and
min(B n_in n_out, B^2 (n_in + n_out)) for |G_B|^2: one more product the size of the backward's
weight-gradient product.  The loop calls callbacks after the optimizer step, which may have
overwritten the gradient buffer (clipping), so |G_B|^2 is recomputed from (x, dz).  For a
first-layer-dominated MLP that is +50 % of the step, hence the default ``every=10``.
Measured: the best of 40 timings of ``on_train_batch_end`` against the best of 40 of
``model.compute_gradients`` + ``optimizer.update`` (float32, Adam, 2 BLAS threads), every=1:

    784-128-10      B=32 +48 %   B=128 +49 %   B=512 +51 %
    784-512-512-10  B=32  +1 %   B=128  +6 %   B=512 +27 %

so every=10 costs at most about 5 %.  If the loop handed over |G_B|^2 before the optimizer step
(an O(P) dot product) the cost would drop to the O(B (n_in + n_out)) norms alone.

Only Dense parameters count: |G|^2 and tr(Sigma) are over the layers that ``layer_io`` lists
(no regulariser terms, which are the same for every example).

Values: ``self.history`` = {"step", "b_simple" (None while unavailable), "g_sq", "trace_sigma"},
``self.b_simple`` and ``self.status``; at each epoch end ``logs["b_simple"]``,
``logs["noise_g_sq"]`` and ``logs["noise_trace_sigma"]`` (NaN while not available), so
``History`` records one value per epoch.
"""
from __future__ import annotations

import math

import numpy as np

from gradfit.callbacks.base import Callback, check_int
from gradfit.noise_scale.estimator import NoiseScaleEstimator
from gradfit.noise_scale.per_example import (
    exact_estimates,
    mean_grad_sq_norm,
    per_example_grad_sq_norms,
)


class GradientNoiseScale(Callback):
    """Measure the simple gradient noise scale B_simple (McCandlish et al. 2018) while training.

    Args:
        ema: beta of the EMAs of tr(Sigma) and |G|^2 (default 0.95: about 20 measured steps).
        min_steps: measured steps before a value is reported (default 10).
        every: measure every ``every`` training steps (default 10: see the overhead above).
        use_bias: "auto" (read each Dense layer's ``use_bias``), a bool, or one bool per layer.
        log_key: the key in the epoch logs (default "b_simple").

    ``on_train_begin`` starts afresh (a resumed run restores ``set_state`` after it).
    """

    def __init__(self, ema: float = 0.95, min_steps: int = 10, every: int = 10,
                 use_bias="auto", log_key: str = "b_simple"):
        super().__init__()
        self.every = check_int("GradientNoiseScale", "every", every, minimum=1)
        # b_small/b_big are unused on this path: the estimates come from per-example norms.
        self.estimator = NoiseScaleEstimator(1, 2, ema=ema, min_steps=min_steps)
        self.use_bias = use_bias
        self.log_key = log_key
        self._reset()

    def _reset(self):
        self.estimator.reset()
        self._step = 0
        self.history = {"step": [], "b_simple": [], "g_sq": [], "trace_sigma": []}

    def on_train_begin(self, logs=None):
        self._reset()

    def _biases(self):
        if self.use_bias != "auto":
            return self.use_bias
        layers = [l for l in getattr(self.model, "layers", []) if hasattr(l, "io")]
        return [bool(getattr(l, "use_bias", True)) for l in layers] or True

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if (self._step - 1) % self.every:
            return
        ios = list(self.model.layer_io())
        b = int(ios[0][0].shape[0])
        bias = self._biases()
        # Estimates for dz as given (scale 1): |G|^2 and tr(Sigma) scale as denom^2 together.
        valid = b >= 2   # one example carries no variance information
        g1 = tr1 = 0.0
        if valid:
            sq = per_example_grad_sq_norms(ios, use_bias=bias)
            est = exact_estimates(sq, mean_grad_sq_norm(ios, use_bias=bias))
            g1, tr1 = est.g_sq, est.trace_sigma
        comm = getattr(self.model, "comm", None)
        # One collective for [examples, ranks with an estimate, sums of their estimates]: every
        # rank calls it every measured step (no rank may skip), and all ranks end up equal.
        v = np.array([b, float(valid), g1, tr1], dtype=np.float64)
        if comm is not None and getattr(comm, "size", 1) > 1:
            comm.allreduce_(v)
        denom, n_valid = v[0], v[1]
        if n_valid == 0:
            return
        g_sq = float(v[2] / n_valid * denom**2)
        trace = float(v[3] / n_valid * denom**2)
        value = self.estimator.update_estimates(g_sq, trace)
        h = self.history
        h["step"].append(self._step)
        h["b_simple"].append(value)
        h["g_sq"].append(self.estimator.g_sq)
        h["trace_sigma"].append(self.estimator.trace_sigma)

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
