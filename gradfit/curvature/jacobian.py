"""Exact per-example Jacobians of Dense networks, accumulated as J^T J and J^T e in row blocks,
and the generalized Gauss-Newton matrix.

For a Dense layer z = x W + b, the derivative of one scalar output c of example i w.r.t. the
layer's weights is ``outer(x_i, dz_ic)`` for W and ``dz_ic`` for b, where dz_ic is the gradient
of c w.r.t. z backpropagated from example i alone (the per-example machinery of
`gradfit.noise_scale.per_example`).  So one backward pass over a batch whose rows are
"example i, output direction c" gives those Jacobian rows for every layer at once:

    x_rep = every example repeated d times      (B d, n_in)  forward, inference mode
    dy    = row (i, c) = the direction s_ic     (B d, d)     backward (the plain one)
    J[(i, c), W] = outer(x_(i,c), dz_(i,c)),   J[(i, c), b] = dz_(i,c)          (B d, n)

With s_ic the unit vectors, J is the Jacobian of the outputs (MATLAB's ``calcjx``; e = yhat - y
gives J^T J and J^T e of least squares).  With s_ic the rows of S_i, S_i^T S_i = H_i the loss's
Hessian w.r.t. example i's head input (`gradfit.losses`, ``hessian_factor``), J^T J is the
**generalized Gauss-Newton matrix** G = sum_i J_i^T H_i J_i (Schraudolph 2002): for mse
exactly the Gauss-Newton matrix 2 J^T J / (d denom); for softmax cross-entropy the
softmax cross-entropy Hessian diag(p) - p p^T sits in the middle.

Memory: blocks of rows are formed and folded into the n x n sum one after the other, so the
number of examples never sets the memory: a block holds at most ``block_bytes`` of Jacobian
(MATLAB's ``mem_reduc`` does the same).  Dropout is off (inference mode): the repeated rows
must see the same network.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg.blas import dgemm

from ..backend import xp
from ..memory import JACOBIAN_BLOCK_BYTES as BLOCK_BYTES
from .budget import check_memory


def examples_per_block(n: int, d: int, itemsize: int = 8, block_bytes: int = BLOCK_BYTES) -> int:
    """How many examples' Jacobian rows (d rows of n values each) fit in ``block_bytes``."""
    return max(1, int(block_bytes) // max(1, d * n * itemsize))


def jacobian_block(net, x, y=None, denom=None, factor=False):
    """Jacobian rows of the examples x (B, n_in): ``(J (B d, n), outputs (B, d))``.

    Rows are example-major: row i d + c belongs to example i, output c.  ``factor=False``:
    rows of d(output_ic)/dw (the raw Jacobian of the outputs, or of the logits when the net's
    head is fused).  ``factor=True``: rows of S_i J_i, the square root of the loss's Hessian
    applied (needs y and denom; see the module docstring)."""
    if net.training:
        raise ValueError("per-example Jacobians need the network in inference mode (training=False): "
                         "dropout would draw a different mask for every repeated row")
    a = xp()
    B = x.shape[0]
    d = net.model.output_dim
    out = net.forward(a.repeat(x, d, axis=0))
    outputs = out[::d].copy()
    if factor:
        if out.shape[0] != B * d:
            raise AssertionError("forward returned a wrong number of rows")
        head = net.head_input(out)[::d]
        S = (net.loss.hessian_factor_from_logits(head, y, denom, probs=outputs) if net.fused
             else net.loss.hessian_factor(outputs, y, denom))
        dy = a.ascontiguousarray(S.reshape(B * d, d))
    else:
        dy = a.tile(a.eye(d, dtype=out.dtype), (B, 1))
    net.backward(dy)
    return _rows_from_layers(net, B * d), outputs


def _rows_from_layers(net, rows):
    """Assemble (rows, n) Jacobian rows from each Dense layer's (x, dz) of the last backward."""
    model = net.model
    J = xp().empty((rows, net.size), dtype=net.dtype)
    for e in model.flat.entries:
        x, dz = model.layers[e.layer].io()
        if e.name == "kernel":
            J[:, e.start:e.stop] = (x[:, :, None] * dz[:, None, :]).reshape(rows, -1)
        else:
            J[:, e.start:e.stop] = dz
    return J


def add_gram_(G, J):
    """G += J^T J in place (G (n, n) C-contiguous, J (rows, n)): BLAS dgemm writes into G's
    Fortran view (G^T; J^T J is symmetric, so that is G += J^T J), without the n x n temporary
    that ``G += J.T @ J`` would allocate, which would double Gauss-Newton's memory.  float32,
    non-contiguous arrays and CuPy take the plain expression."""
    if not (isinstance(G, np.ndarray) and G.dtype == np.float64 and J.dtype == np.float64
            and G.flags.c_contiguous and J.flags.c_contiguous):
        G += J.T @ J
        return G
    out = dgemm(1.0, J.T, J.T, beta=1.0, c=G.T, trans_b=1, overwrite_c=1)
    if not np.shares_memory(out, G):   # BLAS worked on a copy (never with these flags)
        G[...] = out.T
    return G


def _blocks(net, x, block_bytes):
    b = examples_per_block(net.size, net.model.output_dim, np.dtype(net.dtype).itemsize, block_bytes)
    for s in range(0, x.shape[0], b):
        yield s, min(s + b, x.shape[0])


def jacobian(net, x, block_bytes=BLOCK_BYTES):
    """The whole Jacobian (N d, n) of the outputs (logits when fused) of x: for tiny problems
    and tests; the training methods use the block sums below instead."""
    return xp().concatenate([jacobian_block(net, x[s:t])[0] for s, t in _blocks(net, x, block_bytes)])


def residual_products(net, x, y, block_bytes=BLOCK_BYTES, network=None):
    """``(J^T J, J^T e, sum e^2)`` of the residuals e = yhat - y (flattened example-major) and
    their Jacobian J = d yhat / dw, summed in row blocks (no 1/N: MATLAB's ``jj``, ``je`` before
    its normalisation).  y: (N, d) targets."""
    n = net.size
    check_memory("gauss_newton", n, network=network or net.describe())
    jtj = xp().zeros((n, n), dtype=net.dtype)
    jte = xp().zeros(n, dtype=net.dtype)
    sse = 0.0
    for s, t in _blocks(net, x, block_bytes):
        J, out = jacobian_block(net, x[s:t])
        e = (out - y[s:t]).reshape(-1)
        add_gram_(jtj, J)
        jte += J.T @ e
        sse += float(e @ e)
    return jtj, jte, sse


def gauss_newton_matrix(net, x, y, denom=None, include_penalty=True, out=None,
                        block_bytes=BLOCK_BYTES, network=None):
    """The generalized Gauss-Newton matrix G (n, n) of L = sum_i l_i / denom at the model's
    weights: sum_i (S_i J_i)^T (S_i J_i) over row blocks, plus the penalties' Hessian (exact:
    they are separable quadratics or linear).  With `out` the data term is ADDED into it (no
    allocation here; the caller guards the memory)."""
    n = net.size
    denom = x.shape[0] if denom is None else denom
    if out is None:
        check_memory("gauss_newton", n, network=network or net.describe())
        G = xp().zeros((n, n), dtype=net.dtype)
    else:
        G = out
    for s, t in _blocks(net, x, block_bytes):
        J, _ = jacobian_block(net, x[s:t], y[s:t], denom, factor=True)
        add_gram_(G, J)
    if include_penalty:
        diag = net.penalty_curvature()
        if diag is not None:
            G[xp().arange(n), xp().arange(n)] += diag
    return G
