"""Second derivatives of the 2-D toy problems, and the objective through which the
second-order methods (`gradfit.optimizers.second_order`) run on them.

Every problem but the saddle is a sum of squares, ``f(p) = sum_k r_k(p)^2``, which is what
Gauss-Newton and Levenberg-Marquardt need.  With J the Jacobian of the residuals r (K, 2) and
``∇²r_k`` their Hessians (K, 2, 2):

    gradient          g = 2 J^T r
    Gauss-Newton      G = 2 J^T J
    Hessian           H = 2 (J^T J + sum_k r_k ∇²r_k)

=====================  =====================================================================
problem                residuals r(x, y)
=====================  =====================================================================
parabola               (x, y)
rosenbrock             (1 - x, 10 (y - x^2))
beale                  c_k - x + x y^k,  k = 1, 2, 3,  c = (1.5, 2.25, 2.625)
himmelblau             (x^2 + y - 11, x + y^2 - 7)
rastrigin              (x, sqrt(20) sin(pi x), y, sqrt(20) sin(pi y)):  10 (1 - cos 2 pi x)
                       = 20 sin^2(pi x)
long valleys           A p with A = (H / 2)^(1/2), H the valley's constant Hessian
saddle                 none: x^2 - y^2 is not a sum of squares; H = diag(2, -2)
=====================  =====================================================================

The tests check f = sum r^2, g = 2 J^T r and H against finite differences of the analytic
gradient of `gradfit.lab.toy.problems`.  `ToyObjective` gives a problem the interface of
`gradfit.optimizers.second_order.Objective`, so the methods' own code runs unchanged on it.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

from ...optimizers.second_order import SecondOrderError
from .problems import Problem, get_problem

_BEALE_C = (1.5, 2.25, 2.625)
_S20 = math.sqrt(20.0)


class Residuals(NamedTuple):
    """``r(p) -> (K,)``, ``jacobian(p) -> (K, 2)``, ``hessians(p) -> (K, 2, 2)``, at one point
    ``p`` of shape (2,)."""
    r: Callable
    jacobian: Callable
    hessians: Callable


def _rosenbrock():
    def r(p):
        return np.array([1.0 - p[0], 10.0 * (p[1] - p[0] ** 2)])

    def jac(p):
        return np.array([[-1.0, 0.0], [-20.0 * p[0], 10.0]])

    def hess(p):
        return np.array([np.zeros((2, 2)), [[-20.0, 0.0], [0.0, 0.0]]])
    return Residuals(r, jac, hess)


def _beale():
    ks = (1, 2, 3)

    def r(p):
        x, y = p
        return np.array([c - x + x * y ** k for k, c in zip(ks, _BEALE_C)])

    def jac(p):
        x, y = p
        return np.array([[y ** k - 1.0, k * x * y ** (k - 1)] for k in ks])

    def hess(p):
        x, y = p
        # d2 r_k / dx dy = k y^(k-1),  d2 r_k / dy2 = k (k-1) x y^(k-2),  d2 r_k / dx2 = 0
        return np.array([[[0.0, k * y ** (k - 1)],
                          [k * y ** (k - 1), k * (k - 1) * x * y ** max(k - 2, 0)]] for k in ks])
    return Residuals(r, jac, hess)


def _himmelblau():
    def r(p):
        x, y = p
        return np.array([x * x + y - 11.0, x + y * y - 7.0])

    def jac(p):
        x, y = p
        return np.array([[2.0 * x, 1.0], [1.0, 2.0 * y]])

    def hess(p):
        return np.array([[[2.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 2.0]]])
    return Residuals(r, jac, hess)


def _rastrigin():
    pi = math.pi

    def r(p):
        x, y = p
        return np.array([x, _S20 * math.sin(pi * x), y, _S20 * math.sin(pi * y)])

    def jac(p):
        x, y = p
        return np.array([[1.0, 0.0], [_S20 * pi * math.cos(pi * x), 0.0],
                         [0.0, 1.0], [0.0, _S20 * pi * math.cos(pi * y)]])

    def hess(p):
        x, y = p
        out = np.zeros((4, 2, 2))
        out[1, 0, 0] = -_S20 * pi * pi * math.sin(pi * x)
        out[3, 1, 1] = -_S20 * pi * pi * math.sin(pi * y)
        return out
    return Residuals(r, jac, hess)


def _linear(problem: Problem):
    """r = A p for a quadratic f = 0.5 p^T H p (H read off the linear gradient: rows g(e_i))."""
    H = np.stack([problem.grad(e) for e in np.eye(2)])
    lam, U = np.linalg.eigh(0.5 * (H + H.T))
    A = U @ np.diag(np.sqrt(np.maximum(lam, 0.0) / 2.0)) @ U.T

    def r(p):
        return A @ p
    return Residuals(r, lambda p: A.copy(), lambda p: np.zeros((2, 2, 2)))


def _parabola():
    return Residuals(lambda p: np.asarray(p, dtype=np.float64).copy(), lambda p: np.eye(2),
                     lambda p: np.zeros((2, 2, 2)))


def residuals_of(problem) -> Residuals | None:
    """The residual form of ``problem`` (module docstring), or None (the saddle)."""
    problem = get_problem(problem)
    name = problem.name
    if name in ("long_valley", "long_valley_rotated"):
        return _linear(problem)
    makers = {"rosenbrock": _rosenbrock, "beale": _beale, "himmelblau": _himmelblau,
              "rastrigin": _rastrigin, "parabola": _parabola}
    return makers[name]() if name in makers else None


def hessian(problem, p) -> np.ndarray:
    """The exact Hessian (2, 2) of ``problem`` at ``p``: 2 (J^T J + sum_k r_k ∇²r_k), or the
    saddle's diag(2, -2)."""
    problem = get_problem(problem)
    res = residuals_of(problem)
    p = np.asarray(p, dtype=np.float64)
    if res is None:
        if problem.name != "saddle":
            raise ValueError(f"no Hessian known for toy problem {problem.name!r}")
        return np.diag([2.0, -2.0])
    J, r = res.jacobian(p), res.r(p)
    return 2.0 * (J.T @ J + np.einsum("k,kij->ij", r, res.hessians(p)))


class ToyObjective:
    """A 2-D toy problem with the interface of the networks' full-batch `Objective` (its
    docstring lists the protocol): the second-order methods run on it unchanged.  ``residuals``
    is K (the number of r_k; 0 for the saddle)."""

    def __init__(self, problem):
        self.problem = get_problem(problem)
        self.form = residuals_of(self.problem)
        self.n = 2
        self.residuals = 0 if self.form is None else len(self.form.r(np.zeros(2)))
        self.loss_name = "sum of squares" if self.form is not None else self.problem.name
        self.evaluations = {"loss": 0, "gradient": 0, "hvp": 0, "gnvp": 0, "gauss_newton": 0,
                            "hessian": 0}

    def describe(self) -> str:
        return f"2-D {self.problem.name}"

    def check_gauss_newton(self, method: str) -> None:
        if self.form is None:
            raise SecondOrderError(
                f"'{method}' needs a sum of squares, and {self.problem.name} "
                f"({self.problem.formula}) is not one: use 'newton' or 'bfgs'")

    # -- evaluations (fresh arrays each time, as Objective) --------------------------------
    def loss(self, w) -> float:
        self.evaluations["loss"] += 1
        return float(self.problem.value(np.asarray(w, dtype=np.float64)))

    def loss_and_grad(self, w):
        self.evaluations["gradient"] += 1
        return self._value_and_grad(w)

    def loss_only(self, w) -> float:
        return self.loss(w)

    def grad_only(self, w):
        return self.loss_and_grad(w)[1]

    def _value_and_grad(self, w):
        w = np.asarray(w, dtype=np.float64)
        return float(self.problem.value(w)), np.array(self.problem.grad(w), dtype=np.float64)

    # (f, g, matrix) counts as one evaluation of the matrix, as on a network, where the loss
    # and gradient come out of the same pass
    def hessian(self, w, method="newton"):
        self.evaluations["hessian"] += 1
        return (*self._value_and_grad(w), hessian(self.problem, w))

    def _gauss_newton(self, w):
        self.check_gauss_newton("gauss_newton")
        J = self.form.jacobian(np.asarray(w, dtype=np.float64))
        return 2.0 * J.T @ J

    def gauss_newton(self, w, method="gauss_newton"):
        self.check_gauss_newton(method)
        self.evaluations["gauss_newton"] += 1
        return (*self._value_and_grad(w), self._gauss_newton(w))

    def hvp_operator(self, w):
        H = hessian(self.problem, w)

        def apply(v):
            self.evaluations["hvp"] += 1
            return H @ v
        return apply

    def hvp(self, w, v):
        return self.hvp_operator(w)(v)

    def gnvp(self, w, v):
        self.evaluations["gnvp"] += 1
        return self._gauss_newton(w) @ v
