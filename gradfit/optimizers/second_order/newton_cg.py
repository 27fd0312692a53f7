"""Newton-CG (truncated Newton, "Hessian-free"): SciPy's ``minimize(method="Newton-CG")``, one
iteration at a time, with exact Hessian-vector products (the R-operator) as its ``hessp``.

One iteration, rule for rule as SciPy's ``_minimize_newtoncg`` (SciPy 1.17)::

    b = -g;  eta = min(0.5, sqrt(|g|_1));  solve H p = b by conjugate gradients from p = 0,
    stopping when |r|_1 <= eta |g|_1, or at a direction of curvature <= 3 eps (keep p), or at
    negative curvature (keep p; on the first CG step take the steepest descent step scaled
    by |g|^2 / |curvature|), at most cg_maxiter = 20 n steps
    alpha = SciPy's Wolfe line search along p (its first trial step from the previous loss)
    w += alpha p;  stop when |alpha p|_1 <= xtol = n * avextol

H v never forms H: memory stays a few vectors of n (Martens 2010 used the Gauss-Newton
product instead, for its positive semi-definiteness: ``curvature="gauss_newton"``).
Written here rather than calling ``minimize`` because ``minimize`` cannot resume after one
iteration with the previous loss that its line search uses (see linesearch.py); the tests
check that the iterates equal a continuous SciPy run.  State: ``{"step", "f_prev"}``.
"""
from __future__ import annotations

import math

import numpy as np

from ..hyper import POSITIVE, Choice, Hyper, Integer
from .base import SecondOrderMethod, declare, restoring, wolfe_constants
from .linesearch import LineSearchFailed, wolfe_search

EPS = np.finfo(np.float64).eps


def truncated_cg(hessp, g, maxiter):
    """SciPy Newton-CG's inner loop: an approximate solution p of H p = -g (module docstring).
    Returns ``(p, cg_steps)``, p None when CG did not converge in `maxiter` steps."""
    b = -g
    maggrad = float(np.linalg.norm(b, ord=1))
    termcond = min(0.5, math.sqrt(maggrad)) * maggrad
    p = np.zeros_like(g)
    ri = -b
    psupi = -ri
    dri0 = float(np.dot(ri, ri))
    i = 0
    for _ in range(maxiter):
        if np.add.reduce(np.abs(ri)) <= termcond:
            break
        Ap = hessp(psupi)
        curv = float(np.dot(psupi, Ap))
        if 0 <= curv <= 3 * EPS:
            break
        if curv < 0:
            if i == 0:   # steepest descent, scaled by the (negative) curvature along it
                p = dri0 / (-curv) * b
            break
        alphai = dri0 / curv
        p += alphai * psupi
        ri += alphai * Ap
        dri1 = float(np.dot(ri, ri))
        psupi = -ri + dri1 / dri0 * psupi
        i += 1
        dri0 = dri1
    else:
        return None, i
    return p, i


class NewtonCG(SecondOrderMethod):
    """Newton-CG ("Hessian-free"): SciPy's ``minimize(method="Newton-CG")`` rule for rule,
    with exact Hessian-vector products (the R-operator) or Gauss-Newton ones; memory a few
    vectors of n::

        p = truncated CG on H p = -g from 0 (to |r|_1 <= min(0.5, sqrt|g|_1) |g|_1,
            or at curvature <= 3 eps, at most cg_maxiter steps)
        w += alpha p   (SciPy's Wolfe line search)
        stop if |alpha p|_1 <= n avextol

    State: ``{"step", "f_prev"}``.
    """

    name = "newton_cg"
    hyperparameters = declare(
        Hyper("avextol", 1e-5, POSITIVE, "stop when the step's mean abs(component) is below it "
              "(SciPy's xtol / n)"),
        *wolfe_constants(),
        Hyper("cg_maxiter", None, Integer(1, optional=True),
              "CG steps per iteration (None: 20 n, SciPy's)"),
        Hyper("curvature", "hessian", Choice("hessian", "gauss_newton"),
              "products: exact 'hessian' (H v) or 'gauss_newton' (G v, Martens 2010)"))

    def init(self, params, segments=None, network=None) -> dict:
        self.check_memory(np.asarray(params).size, network=network)
        return {"step": 0, "f_prev": None}

    def _products(self, objective, w):
        """v -> H(w) v (sharing one forward pass over the CG solve), or v -> G(w) v."""
        if self.curvature == "hessian":
            return objective.hvp_operator(w)
        return lambda v: objective.gnvp(w, v)

    def _iterate(self, objective, params, state):
        n = params.size
        with restoring(params) as x0:
            f, g = objective.loss_and_grad(x0)
            p, cg_steps = truncated_cg(self._products(objective, x0), g,
                                       self.cg_maxiter or 20 * n)
            info = {"loss_before": f, "gradient": float(np.linalg.norm(g)), "cg_steps": cg_steps,
                    "step": False, "stop": None}
            if p is None:    # SciPy stops here too (status 3), without a step
                params[...] = x0
                info["stop"] = (f"conjugate gradients did not converge in {cg_steps} steps: the "
                                "Hessian keeps curving up; try curvature='gauss_newton' or 'lbfgs'")
                return f, info
            try:
                alpha, loss, _ = wolfe_search(objective, x0, p, f, g, state["f_prev"],
                                              self.c1, self.c2)
            except LineSearchFailed as exc:
                params[...] = x0
                info["stop"] = f"line search failed: {exc}"
                return f, info
            update = alpha * p
            params[...] = x0 + update
        state["f_prev"] = f
        self.count_step(state)
        info.update(step=True, alpha=alpha)
        if float(np.linalg.norm(update, ord=1)) <= n * self.avextol:
            info["stop"] = f"converged: the step |alpha p|_1 <= xtol {n * self.avextol:g}"
        return loss, info
