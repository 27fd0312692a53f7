"""The full-batch objective of a model, as the second-order methods see it: a function of the
flat float64 weights w with its gradient, Hessian-vector products, Gauss-Newton matrix and
exact Hessian.

    L(w) = (1/N) sum_{i=1..N} l_i(w) + penalties(w)         (gradfit's batch-mean convention)

**Pattern separability** (the lecture): every quantity is a sum over the examples, so each
rank of an MPI job sums over its own rows (with denominator N, the global number of
examples) and ONE Allreduce of one flat buffer per evaluation gives the full-batch value on
every rank: ``[loss | gradient]``, ``[loss | gradient | J^T J]``, ``[H v]``.  The weight
penalties are added after the sum, once, the same on every rank.  `comm` is gradfit's
communicator (``allreduce_(flat_array)``; `gradfit.parallel.comm`).

Dropout is off (inference mode): a line search or a damping rule compares losses of the SAME
function, which a fresh dropout mask per evaluation would break.  Rows are processed in blocks
of ``block_rows`` (the forward pass's activations) and the Jacobian in blocks of
``block_bytes`` (`gradfit.curvature.jacobian`), so the number of examples never sets the
memory.  ``evaluations`` counts each kind of pass.

**The protocol the methods use** (what another objective, such as the 2-D toy problems of
`gradfit.lab.toy.curvature`, provides): ``n``, ``residuals``, ``evaluations``, ``describe()``,
``loss_name``, ``check_gauss_newton(method)``, ``loss(w)``, ``loss_and_grad(w)``,
``loss_only(w)``, ``grad_only(w)``, ``hvp_operator(w)``, ``gnvp(w, v)``,
``gauss_newton(w, method)`` and ``hessian(w, method)``.
"""
from __future__ import annotations

import numpy as np

from ...curvature import (HessianVectorProducts, Network, check_memory, gauss_newton_matrix,
                          gauss_newton_vector_product, hessian_matrix)
from ...curvature.hvp import symmetrize_
from ...curvature.jacobian import BLOCK_BYTES
from ...parallel import get_comm
from ...utils import check_finite
from .base import SecondOrderError


class Objective:
    """``Objective(model, x, y, loss=None, comm=None, examples=None)``.

    model: a float64 `Sequential` (built here from x if needed); x, y: this process's rows
    (all of them in one process); loss: name or `Loss` (default: the compiled ``model.loss``);
    comm: default ``model.comm``; examples: N over all ranks (default: summed over comm).
    Every method takes the weights ``w`` to evaluate at (flat, float64), puts them into the
    model, and returns fresh arrays.
    """

    def __init__(self, model, x, y, loss=None, comm=None, examples=None, block_rows=4096,
                 block_bytes=BLOCK_BYTES):
        loss = loss if loss is not None else model.loss
        if loss is None:
            raise SecondOrderError("no loss: compile the model first or pass loss='mse' (or another)")
        self.model = model
        x = model.check_inputs(x)
        if not model.built:
            model.build(x.shape)
        if model.dtype != np.float64:
            raise SecondOrderError(
                f"second-order methods work on float64 weights, the model is {model.dtype}: "
                "build it with Sequential(..., dtype='float64') (J^T J and Hessians lose most of "
                "their digits in float32)")
        self.net = Network(model, loss)
        self.loss_fn = self.net.loss
        y = np.asarray(y)
        if len(y) != len(x):
            raise SecondOrderError(f"x and y have different lengths: {len(x)} and {len(y)}")
        check_finite("y", y)
        y = self.loss_fn.check_targets(y, model.output_dim)
        self.x, self.y = x, (y if self.loss_fn.sparse else np.ascontiguousarray(y, dtype=np.float64))
        self.comm = comm if comm is not None else getattr(model, "comm", None) or get_comm()
        self.examples = int(examples) if examples is not None else \
            int(self.comm.allreduce_scalar(len(x)))
        self.n = model.flat.size
        self.outputs = model.output_dim
        self.block_rows = int(block_rows)
        self.block_bytes = int(block_bytes)
        self.evaluations = {"loss": 0, "gradient": 0, "hvp": 0, "gnvp": 0, "gauss_newton": 0,
                            "hessian": 0}
        self._cache = None   # (w, loss, gradient) of the last gradient evaluation
        self._passes = 0     # blocks of rows run through the model by this objective

    # -- what it is ---------------------------------------------------------------------------
    @property
    def residuals(self) -> int:
        """N d: the number of squared errors whose mean is mse (MATLAB's Ne)."""
        return self.examples * self.outputs

    def describe(self) -> str:
        return self.net.describe()

    @property
    def loss_name(self) -> str:
        return self.loss_fn.name

    def check_gauss_newton(self, method: str) -> None:
        """Refuse a loss without a Gauss-Newton form (before any weights change): mae (its
        second derivative is 0) and categorical cross-entropy on probabilities (its Hessian in
        the outputs is indefinite).  The squared error and the cross-entropies on logits (or
        fused with their softmax / sigmoid) have one (lm.py)."""
        if self.loss_fn.name == "mae":
            raise SecondOrderError(
                f"'{method}' needs a squared-error or cross-entropy loss, got 'mae' (its second "
                "derivative is 0, so J^T H J is 0): compile with loss='mse', or use 'bfgs' / "
                "'lbfgs', which need only the gradient")
        if self.loss_fn.name.endswith("categorical_crossentropy") and not (
                self.net.fused or self.loss_fn.from_logits):
            raise SecondOrderError(
                f"'{method}' with {self.loss_fn.name} on probabilities has no Gauss-Newton form "
                "(its Hessian in the outputs is indefinite): end the model in Dense(..., "
                "activation='softmax') or use from_logits=True on a linear last layer")

    # -- evaluations ----------------------------------------------------------------------------
    def _at(self, w) -> None:
        p = self.model.params
        if w is not p:
            p[...] = w

    def _blocks(self):
        for s in range(0, len(self.x), self.block_rows):
            self._passes += 1
            yield self.x[s:s + self.block_rows], self.y[s:s + self.block_rows]

    def _cached(self, w):
        c = self._cache
        return c if c is not None and np.array_equal(c[0], w) else None

    def loss(self, w) -> float:
        """L(w): one forward pass over the rows, one Allreduce of one number."""
        hit = self._cached(w)
        if hit is not None:
            return hit[1]
        self._at(w)
        buf = np.zeros(1)
        for xb, yb in self._blocks():
            out = self.net.forward(xb)
            buf[0] += self.net.loss_and_output_grad(out, yb, self.examples)[0]
        self.comm.allreduce_(buf)
        self.evaluations["loss"] += 1
        return float(buf[0]) + self.net.penalty()

    def _local_loss_and_grad(self, buf) -> None:
        """buf[:n] += this rank's gradient sum, buf[n] += its loss sum (denominator N)."""
        n = self.n
        for xb, yb in self._blocks():
            out = self.net.forward(xb)
            value, dy = self.net.loss_and_output_grad(out, yb, self.examples)
            self.net.backward(dy)
            buf[:n] += self.model.grads
            buf[n] += value

    def loss_and_grad(self, w):
        """(L(w), dL/dw): one forward and backward pass, one Allreduce of n + 1 numbers."""
        hit = self._cached(w)
        if hit is not None:
            return hit[1], hit[2].copy()
        self._at(w)
        buf = np.zeros(self.n + 1)
        self._local_loss_and_grad(buf)
        self.comm.allreduce_(buf)
        self.evaluations["gradient"] += 1
        return self._finish(w, buf[self.n], buf[:self.n])

    def _finish(self, w, data_loss, grad):
        g = np.array(grad, copy=True)
        f = float(data_loss) + self.net.add_penalty_gradient(g)
        self._cache = (np.array(w, copy=True), f, g)
        return f, g.copy()

    # the two halves of loss_and_grad, for line searches that ask for them one at a time
    def loss_only(self, w) -> float:
        return self.loss_and_grad(w)[0]

    def grad_only(self, w):
        return self.loss_and_grad(w)[1]

    def hvp(self, w, v):
        """H(w) v, exact (R-operator): one forward and R-pass, one Allreduce of n numbers."""
        return self.hvp_operator(w)(v)

    def hvp_operator(self, w):
        """``v -> H(w) v`` for many products at the same w (one CG solve).  When the rows are
        one block, the forward pass is run once and shared by every product until this
        objective runs another pass; otherwise each product runs its own."""
        w = np.array(w, copy=True)
        shared = None

        def apply(v):
            nonlocal shared
            if shared is None or shared[0] != self._passes:
                self._at(w)
                buf = np.zeros(self.n)
                for xb, yb in self._blocks():
                    products = HessianVectorProducts(self.net, xb, yb, self.examples)
                    buf += products.apply(v)
                if 0 < len(self.x) <= self.block_rows:
                    shared = (self._passes, products)
            else:
                buf = shared[1].apply(v)
            self.comm.allreduce_(buf)
            self.net.add_penalty_hvp(v, buf)
            self.evaluations["hvp"] += 1
            return buf
        return apply

    def gnvp(self, w, v):
        """G(w) v = J^T H_loss J v (+ penalties' Hessian v): one Allreduce of n numbers."""
        self._at(w)
        buf = np.zeros(self.n)
        for xb, yb in self._blocks():
            buf += gauss_newton_vector_product(self.net, xb, yb, v, self.examples,
                                               include_penalty=False)
        self.comm.allreduce_(buf)
        self.net.add_penalty_hvp(v, buf)
        self.evaluations["gnvp"] += 1
        return buf

    def gauss_newton(self, w, method="gauss_newton"):
        """(L, dL/dw, G): the generalized Gauss-Newton matrix G (n, n) of L at w (J^T J scaled
        for mse, J^T H_softmax J for softmax cross-entropy; `gradfit.curvature.jacobian`),
        with one Allreduce of n^2 + n + 1 numbers.  Refused before allocating when it does not
        fit in memory (`method` names the method in that message)."""
        return self._matrix(w, method, "gauss_newton", gauss_newton_matrix,
                            {"block_bytes": self.block_bytes})

    def hessian(self, w, method="newton"):
        """(L, dL/dw, H): the exact Hessian (n, n) at w from n Hessian-vector products per row
        block, symmetrised; one Allreduce of n^2 + n + 1 numbers."""
        L, g, H = self._matrix(w, method, "hessian", hessian_matrix, {})
        return L, g, symmetrize_(H)

    def _matrix(self, w, method, kind, build, options):
        n = self.n
        check_memory(method, n, network=self.describe(), examples=self.examples,
                     outputs=self.outputs)
        self._at(w)
        buf = np.zeros(n * n + n + 1)
        M = buf[:n * n].reshape(n, n)
        with np.errstate(over="ignore", invalid="ignore"):   # checked below, with a message
            for xb, yb in self._blocks():
                build(self.net, xb, yb, self.examples, include_penalty=False, out=M, **options)
            self._local_loss_and_grad(buf[n * n:])
        self.comm.allreduce_(buf)
        self.evaluations[kind] += 1
        curvature = self.net.penalty_curvature()
        if curvature is not None:
            M[np.arange(n), np.arange(n)] += curvature
        # the sum is finite exactly when every entry is (short of overflowing the sum itself);
        # counting them allocates n^2 flags, so only on that path
        bad = 0 if np.isfinite(buf.sum()) else int(np.count_nonzero(~np.isfinite(buf)))
        if bad:
            what = "Jacobian" if kind == "gauss_newton" else "Hessian"
            raise SecondOrderError(
                f"the {what} has {bad:,} non-finite entries at the current weights (loss "
                f"{buf[-1]!r}): the network's outputs overflow; scale the inputs (e.g. to "
                "[-1, 1]) or start again from smaller initial weights")
        f, g = self._finish(w, buf[-1], buf[n * n:n * n + n])
        return f, g, M
