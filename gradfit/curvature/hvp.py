"""Exact Hessian-vector products by Pearlmutter's R-operator, the Gauss-Newton-vector product,
and the exact Hessian of tiny networks built from n of them.

Pearlmutter (1994), "Fast exact multiplication by the Hessian", Neural Computation 6(1): for a
direction v in weight space, R{f} = d/de f(w + e v) at e = 0.  Applying R{.} to every line of
the forward and backward pass (each layer's ``r_forward`` / ``r_backward``, each loss's
``hessian_vector``) gives R{dL/dw} = H v exactly, for about the cost of two gradients, never
forming H.  The Gauss-Newton-vector product G v = J^T H_loss J v takes the R-forward pass
(J v), the loss's Hessian, and the plain backward pass (J^T .): Schraudolph (2002).

All functions return sums over the given rows divided by ``denom`` (default: the number of
rows), i.e. the quantities of ``L = sum_i l_i / denom`` (gradfit's batch-mean convention).
``include_penalty=True`` adds the weight penalties' part; leave it False when the results of
several row blocks or MPI ranks are summed afterwards, and add it once to the sum
(`Network.add_penalty_hvp`).

Shapes: v and the results are flat float arrays of the model's n weights.
"""
from __future__ import annotations

from ..backend import xp
from .budget import check_memory


class HessianVectorProducts:
    """``HessianVectorProducts(net, x, y, denom=None)``: one forward pass over rows (x, y),
    then any number of exact products H v at the model's current weights (``apply``).

    ``value``: sum_i l_i / denom of these rows; ``gradient()``: its gradient (flat, new).
    The layers' caches must not be disturbed (no other forward on the model) while in use.
    """

    def __init__(self, net, x, y, denom=None):
        self.net, self.y = net, y
        self.denom = x.shape[0] if denom is None else denom
        self.out = net.forward(x)
        self.value, self.dy = net.loss_and_output_grad(self.out, y, self.denom)

    def apply(self, v, grad_out=None):
        """H v of the data term (new flat array); with `grad_out` (flat) the gradient too."""
        net = self.net
        vv = net.views(v)
        hv = xp().zeros(net.size, dtype=net.dtype)
        r = net.r_forward(vv)
        rdy = net.loss_hessian_vector(self.out, self.y, r, self.denom)
        grads = None if grad_out is None else net.views(grad_out)
        net.r_backward(self.dy, rdy, vv, net.views(hv), grads)
        return hv

    def gradient(self):
        """dL/dw of the data term of these rows (one backward pass; new flat array)."""
        g = xp().zeros(self.net.size, dtype=self.net.dtype)
        self.apply(xp().zeros_like(g), grad_out=g)
        return g


def hessian_vector_product(net, x, y, v, denom=None, include_penalty=True):
    """H v at the model's weights, exact (R-operator): a flat array like v."""
    hv = HessianVectorProducts(net, x, y, denom).apply(v)
    if include_penalty:
        net.add_penalty_hvp(v, hv)
    return hv


def gauss_newton_vector_product(net, x, y, v, denom=None, include_penalty=True):
    """G v = sum_i J_i^T H_i J_i v (J_i: Jacobian of example i's head input, H_i: the loss's
    Hessian there), plus the penalties' Hessian times v (they are quadratic or linear)."""
    denom = x.shape[0] if denom is None else denom
    out = net.forward(x)
    jv = net.r_forward(net.views(v))
    hjv = net.loss_hessian_vector(out, y, jv, denom)
    net.backward(xp().ascontiguousarray(hjv))
    gv = net.model.grads.copy()
    if include_penalty:
        net.add_penalty_hvp(v, gv)
    return gv


def hessian_matrix(net, x, y, denom=None, include_penalty=True, out=None, network=None):
    """The exact Hessian (n, n) of L at the model's weights, column j = H e_j (n products).

    For tiny networks: it costs n R-passes and n^2 float values; the memory guard
    (`gradfit.curvature.budget`) refuses before allocating when those do not fit.  With `out`
    (an (n, n) array) the data term is ADDED into it.  The result is symmetrised
    ((H + H^T) / 2) only when it is allocated here.
    """
    n = net.size
    if out is None:
        check_memory("newton", n, network=network or net.describe())
        H = xp().zeros((n, n), dtype=net.dtype)
    else:
        H = out
    products = HessianVectorProducts(net, x, y, denom)
    e = xp().zeros(n, dtype=net.dtype)
    for j in range(n):
        e[j] = 1.0
        H[:, j] += products.apply(e)
        e[j] = 0.0
    if include_penalty:
        diag = net.penalty_curvature()
        if diag is not None:
            H[xp().arange(n), xp().arange(n)] += diag
    if out is None:
        symmetrize_(H)
    return H


def symmetrize_(H, block_values: int = 1 << 22):
    """H <- (H + H^T) / 2 in place, one strip of rows at a time: strip [i, i + b) averages
    H[i:i+b, i:] with H[i:, i:i+b]^T and writes both, so the extra memory is one b x n strip
    (about ``block_values`` values) instead of a second n x n matrix.  Later strips touch only
    entries whose indices are both >= i + b, never one already written."""
    n = H.shape[0]
    b = max(1, block_values // max(n, 1))
    for i in range(0, n, b):
        j = min(i + b, n)
        strip = H[i:j, i:] + H[i:, i:j].T
        strip *= 0.5
        H[i:j, i:] = strip
        H[i:, i:j] = strip.T
    return H
