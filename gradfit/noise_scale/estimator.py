"""The simple gradient noise scale B_simple from gradient norms at two batch sizes.

Source: McCandlish, Kaplan, Amodei et al. (2018), "An Empirical Model of Large-Batch
Training", arXiv:1812.06162: Section 2.2 (B_simple) and Appendix A.1 (the estimators).

Notation.  g_i is the gradient of the per-example loss l_i, G = E[g_i] the true gradient,
Sigma = Cov[g_i] the per-example covariance.  A mean gradient over B independent examples,
G_B = (1/B) sum_i g_i, has

    E[|G_B|^2] = |G|^2 + tr(Sigma) / B                                        (A.1)

so two squared norms, at batch sizes B_small < B_big, give two unbiased estimates:

    |G|^2     ~  (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small)
    tr(Sigma) ~  (|G_small|^2 - |G_big|^2) / (1/B_small - 1/B_big)

and the simple noise scale is

    B_simple = tr(Sigma) / |G|^2.

Each single-step estimate is very noisy (and |G|^2 is often negative), and the ratio of two
unbiased estimates is biased, so, as the paper does, tr(Sigma) and |G|^2 are smoothed by two
SEPARATE exponential moving averages and the ratio is taken of the averages.

EMA with bias correction (as Adam's moments):

    m_t = beta * m_{t-1} + (1 - beta) * x_t,   m_0 = 0,   m_hat_t = m_t / (1 - beta^t)

The correction factor is the same for numerator and denominator, so it cancels in B_simple;
it matters for the reported |G|^2 and tr(Sigma), which are unbiased averages from step 1.

Default ``ema=0.95`` (an averaging window of about 1/(1-beta) = 20 steps): short enough to follow
B_simple as it grows during training, long enough that |G|^2 is usually positive.  For a
smoother, slower estimate use 0.99.

Where the two batch sizes come from:
* data parallel: B_small = the per-rank batch (the local gradient before the Allreduce),
  B_big = the global batch (after it): free, the paper's method;
* one process: B_small = 1 using the mean of the exact per-example squared norms (see
  ``per_example.py``); then these formulas are exactly the sample estimators there.
"""
from __future__ import annotations

import math
from numbers import Real


def _check_batch_sizes(b_small, b_big):
    for name, b in (("b_small", b_small), ("b_big", b_big)):
        if isinstance(b, bool) or not isinstance(b, Real) or not math.isfinite(b) or b <= 0:
            raise ValueError(f"{name} must be a positive finite number of examples, got {b!r}")
    if b_small >= b_big:
        raise ValueError(
            f"b_small must be smaller than b_big, got b_small={b_small!r}, b_big={b_big!r}: "
            "swap them, or use two different batch sizes"
        )
    return float(b_small), float(b_big)


def _check_sq_norm(name, v):
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number (a squared norm), got {v!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(
            f"{name} must be a finite non-negative squared norm, got {v!r}: "
            "the gradient has diverged (lower the learning rate) or a norm was not squared"
        )
    return v


def two_batch_estimates(g_small_sq, g_big_sq, b_small, b_big):
    """One-step unbiased estimates ``(|G|^2, tr(Sigma))`` from two squared gradient norms.

    g_small_sq = |G_small|^2, g_big_sq = |G_big|^2: squared norms of MEAN gradients over
    b_small and b_big examples.  Formulas in the module docstring (Appendix A.1).
    """
    b_small, b_big = _check_batch_sizes(b_small, b_big)
    gs = _check_sq_norm("g_small_sq", g_small_sq)
    gb = _check_sq_norm("g_big_sq", g_big_sq)
    g_sq = (b_big * gb - b_small * gs) / (b_big - b_small)
    trace = (gs - gb) / (1.0 / b_small - 1.0 / b_big)
    return g_sq, trace


class NoiseScaleEstimator:
    """Smoothed B_simple = tr(Sigma)_ema / |G|^2_ema from squared gradient norms at two batch sizes.

    Args:
        b_small, b_big: batch sizes (examples) of the two mean gradients, b_small < b_big.
            ``update`` may override them per call (a short last batch).
        ema: beta of both moving averages, in [0, 1); 0 means no smoothing.
        min_steps: ``b_simple`` is None until this many updates were made.

    Cost: O(1) per ``update``; the caller computes the two squared norms.

    Example::

        est = NoiseScaleEstimator(b_small=32, b_big=256)
        for step in ...:
            est.update(float(g_local @ g_local), float(g_global @ g_global))
        est.b_simple, est.status     # None and the reason, or a float and "ok"
    """

    def __init__(self, b_small, b_big, ema: float = 0.95, min_steps: int = 10):
        self.b_small, self.b_big = _check_batch_sizes(b_small, b_big)
        if isinstance(ema, bool) or not isinstance(ema, Real) or not 0.0 <= ema < 1.0:
            raise ValueError(f"ema must be a number in [0, 1), got {ema!r}; 0.95 is the default")
        if isinstance(min_steps, bool) or not isinstance(min_steps, int) or min_steps < 1:
            raise ValueError(f"min_steps must be an integer >= 1, got {min_steps!r}")
        self.ema = float(ema)
        self.min_steps = min_steps
        self.reset()

    def reset(self) -> None:
        """Forget every update."""
        self.steps = 0
        self._m_g_sq = 0.0
        self._m_trace = 0.0

    def update(self, g_small_sq, g_big_sq, b_small=None, b_big=None):
        """Fold in one pair of squared norms; returns the new ``b_simple`` (or None)."""
        bs = self.b_small if b_small is None else b_small
        bb = self.b_big if b_big is None else b_big
        g_sq, trace = two_batch_estimates(g_small_sq, g_big_sq, bs, bb)
        return self.update_estimates(g_sq, trace)

    def update_estimates(self, g_sq, trace):
        """Fold in one step's unbiased estimates of |G|^2 and tr(Sigma) directly
        (e.g. from ``per_example.exact_estimates``); returns ``b_simple``."""
        for name, v in (("g_sq", g_sq), ("trace", trace)):
            if not math.isfinite(float(v)):
                raise ValueError(f"{name} must be finite, got {v!r}")
        beta = self.ema
        self._m_g_sq = beta * self._m_g_sq + (1.0 - beta) * float(g_sq)
        self._m_trace = beta * self._m_trace + (1.0 - beta) * float(trace)
        self.steps += 1
        return self.b_simple

    def _correction(self) -> float:
        return 1.0 - self.ema ** self.steps

    @property
    def g_sq(self):
        """Bias-corrected EMA of the |G|^2 estimates (None before the first update)."""
        return self._m_g_sq / self._correction() if self.steps else None

    @property
    def trace_sigma(self):
        """Bias-corrected EMA of the tr(Sigma) estimates (None before the first update)."""
        return self._m_trace / self._correction() if self.steps else None

    @property
    def status(self) -> str:
        """"ok", or why ``b_simple`` is None."""
        if self.steps < self.min_steps:
            return f"warming up: {self.steps} of min_steps={self.min_steps} updates"
        if self.g_sq <= 0.0:
            return (
                f"not available: the |G|^2 estimate is non-positive ({self.g_sq:.3g}): gradient "
                "noise dominates the signal; use a larger b_big or a larger ema"
            )
        if self.trace_sigma < 0.0:
            return (
                f"not available: the tr(Sigma) estimate is negative ({self.trace_sigma:.3g}); "
                "average over more steps (larger ema)"
            )
        return "ok"

    @property
    def b_simple(self):
        """tr(Sigma)_ema / |G|^2_ema as a float, or None (see ``status``)."""
        if self.status != "ok":
            return None
        return self.trace_sigma / self.g_sq

    def get_state(self) -> dict:
        return {"steps": self.steps, "m_g_sq": self._m_g_sq, "m_trace": self._m_trace}

    def set_state(self, state: dict) -> None:
        self.steps = int(state["steps"])
        self._m_g_sq = float(state["m_g_sq"])
        self._m_trace = float(state["m_trace"])
