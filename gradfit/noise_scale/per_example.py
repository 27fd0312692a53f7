"""Exact per-example gradient norms of Dense layers, and B_simple from one batch.

Per-example norms without per-example gradients.  A Dense layer z = x W + b, for one example
i with input x_i (n_in,) and dz_i = dl_i/dz_i (n_out,), the gradient of the PER-EXAMPLE loss
l_i w.r.t. its pre-activation output, has

    dl_i/dW = outer(x_i, dz_i)   (n_in, n_out),        dl_i/db = dz_i,

and the squared Frobenius norm of an outer product factorises:

    |outer(x_i, dz_i)|_F^2 = sum_jk x_ij^2 dz_ik^2 = |x_i|^2 |dz_i|^2.

So |g_i|^2 = sum over layers (|x_i|^2 + 1[bias]) |dz_i|^2 costs O(B (n_in + n_out)) per layer,
against O(B n_in n_out) memory to materialise the per-example gradients.  (Goodfellow 2015,
"Efficient per-example gradient computations"; exact only for layers whose weight is used
once per example, as Dense on 2-D inputs.)

Convention: dz must be of the per-example loss l_i.  gradfit's layers hold dz of the batch
MEAN loss L = (1/denom) sum_i l_i (``model.layer_io()``), that is dz_i / denom: pass
``scale=denom`` (the batch size, or the global batch size in data-parallel training).

B_simple from one batch (McCandlish et al. 2018, Sec. 2.2 and App. A).  With B per-example
gradients g_i and their mean G_B:

    tr(Sigma) ~ 1/(B-1) sum_i |g_i - G_B|^2 = (sum_i |g_i|^2 - B |G_B|^2) / (B - 1)

(the sample covariance with Bessel's B/(B-1) correction: unbiased for tr(Sigma)), and since
E|G_B|^2 = |G|^2 + tr(Sigma)/B,

    |G|^2 ~ |G_B|^2 - tr(Sigma)_est / B                       (unbiased)

These are exactly the two-batch estimators of ``estimator.py`` with B_small = 1,
|G_small|^2 := mean_i |g_i|^2 and B_big = B, |G_big|^2 = |G_B|^2.
"""
from __future__ import annotations

import math
from typing import NamedTuple

from gradfit.backend import xp


class NoiseEstimate(NamedTuple):
    """One batch's unbiased |G|^2 and tr(Sigma), their ratio (None if |G|^2 <= 0) and why."""

    b_simple: float | None
    g_sq: float
    trace_sigma: float
    status: str


def _pairs(layer_ios, use_bias):
    layer_ios = list(layer_ios)
    if not layer_ios:
        raise ValueError("layer_ios is empty: pass a list of (x, dz) pairs, one per Dense layer")
    if isinstance(use_bias, bool):
        use_bias = [use_bias] * len(layer_ios)
    use_bias = list(use_bias)
    if len(use_bias) != len(layer_ios):
        raise ValueError(
            f"use_bias has {len(use_bias)} entries for {len(layer_ios)} layers: give one bool per layer"
        )
    batch = None
    for k, pair in enumerate(layer_ios):
        if len(pair) != 2:
            raise ValueError(f"layer_ios[{k}] must be an (x, dz) pair, got {len(pair)} items")
        x, dz = pair
        if x.ndim != 2 or dz.ndim != 2 or x.shape[0] != dz.shape[0]:
            raise ValueError(
                f"layer_ios[{k}]: x {tuple(x.shape)} and dz {tuple(dz.shape)} must be 2-D "
                "(batch, features) with the same batch size"
            )
        if batch is None:
            batch = x.shape[0]
        elif x.shape[0] != batch:
            raise ValueError(f"layer_ios[{k}] has batch {x.shape[0]}, layer 0 has {batch}")
        yield x, dz, bool(use_bias[k])


def per_example_grad_sq_norms(layer_ios, scale=1.0, use_bias=True):
    """|g_i|^2 over all the given Dense layers, for each example: shape (B,).

    layer_ios: [(x (B, n_in), dz (B, n_out)), ...] one pair per Dense layer.
    scale: dz * scale is the gradient of the per-example loss (``scale=B`` for gradfit's
        batch-mean dz).  use_bias: whether the layers have a bias (a bool, or one per layer).
    """
    a = xp()
    total = None
    for x, dz, bias in _pairs(layer_ios, use_bias):
        x_sq = a.einsum("ij,ij->i", x, x)
        dz_sq = a.einsum("ij,ij->i", dz, dz)
        part = (x_sq + 1.0) * dz_sq if bias else x_sq * dz_sq
        total = part if total is None else total + part
    return total * (float(scale) ** 2)


def mean_grad_sq_norm(layer_ios, scale=1.0, use_bias=True) -> float:
    """|G_B|^2 of the mean gradient G_B = (1/B) sum_i g_i over the same layers, from (x, dz).

    dW of the mean is (scale/B) x^T dz.  Its squared norm is computed the cheaper way per layer:
    directly, O(B n_in n_out), or through the Gram matrices,
    |x^T dz|_F^2 = sum_ij (x x^T)_ij (dz dz^T)_ij, O(B^2 (n_in + n_out)).
    """
    a = xp()
    total = 0.0
    for x, dz, bias in _pairs(layer_ios, use_bias):
        b, n_in = x.shape
        n_out = dz.shape[1]
        if b * (n_in + n_out) < n_in * n_out:
            w_sq = a.sum((x @ x.T) * (dz @ dz.T))
        else:
            gw = x.T @ dz
            w_sq = a.sum(gw * gw)
        total += float(w_sq)
        if bias:
            gb = dz.sum(axis=0)
            total += float(gb @ gb)
        batch = b
    return total * (float(scale) / batch) ** 2


def exact_estimates(per_example_sq_norms, mean_grad_sq) -> NoiseEstimate:
    """Unbiased |G|^2, tr(Sigma) and B_simple from one batch (formulas in the module docstring).

    per_example_sq_norms: (B,) values |g_i|^2, B >= 2.  mean_grad_sq: |G_B|^2 of their mean.
    Arithmetic in float64 whatever the input dtype (the difference cancels).
    """
    a = xp()
    s = per_example_sq_norms
    if getattr(s, "ndim", None) != 1 or s.shape[0] < 2:
        raise ValueError(
            "per_example_sq_norms must be a 1-D array of at least 2 squared norms, got shape "
            f"{getattr(s, 'shape', type(s).__name__)}"
        )
    b = int(s.shape[0])
    total = float(a.sum(s, dtype=a.float64))
    g_b_sq = float(mean_grad_sq)
    if not (math.isfinite(total) and math.isfinite(g_b_sq)) or g_b_sq < 0 or float(s.min()) < 0:
        raise ValueError(
            f"squared norms must be finite and >= 0, got sum |g_i|^2 = {total!r}, "
            f"|G_B|^2 = {g_b_sq!r}: the gradient has diverged (lower the learning rate)"
        )
    return estimates_from_sums(total, b, g_b_sq)


def estimates_from_sums(total: float, b: int, g_b_sq: float) -> NoiseEstimate:
    """`exact_estimates` from ``total = sum_i |g_i|^2`` over ``b >= 2`` examples and ``g_b_sq =
    |G_B|^2`` of their mean: what data-parallel ranks hold after one allreduce of their sums
    (``GradientNoiseScale`` pools the global batch this way).  No checks: the caller's."""
    trace = (total - b * g_b_sq) / (b - 1)
    g_sq = g_b_sq - trace / b
    if g_sq <= 0.0:
        return NoiseEstimate(None, g_sq, trace, f"not available: |G|^2 estimate {g_sq:.3g} <= 0")
    return NoiseEstimate(trace / g_sq, g_sq, trace, "ok")


def b_simple_exact(per_example_sq_norms, mean_grad):
    """B_simple = tr(Sigma)/|G|^2 of one batch; None where the |G|^2 estimate is <= 0.

    mean_grad: the flat mean gradient G_B (any shape) of exactly these per-example gradients
    (the same parameters, no regulariser terms).  ``exact_estimates`` gives the parts.
    """
    a = xp()
    g = a.asarray(mean_grad).ravel()
    return exact_estimates(per_example_sq_norms, float(a.dot(g, g))).b_simple
