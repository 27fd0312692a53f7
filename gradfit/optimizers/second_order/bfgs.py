"""BFGS: SciPy's ``minimize(method="BFGS")``, one iteration at a time, its inverse-Hessian
approximation kept in the state.

One iteration, rule for rule as SciPy's ``_minimize_bfgs`` (SciPy 1.17), with H_0 = I::

    stop if max |g_i| <= gtol
    p = -H g;  alpha = SciPy's Wolfe line search (first trial step from the previous loss;
               before the first iteration SciPy takes f + |g| / 2 as "the previous loss")
    s = alpha p;  y = g_new - g;  stop if max |g_new_i| <= gtol (H is then not updated)
    rho = 1 / (y.s)  (1000 if y.s = 0);   H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T

The update is applied in place as three rank-one BLAS updates (``dger``), expanding the
product with H symmetric and h = H y:  H <- H - rho (s h^T + h s^T) + (rho^2 y.h + rho) s s^T.
SciPy forms I - rho s y^T and two n x n products instead: five n x n arrays at its peak
against one here, which is what decides where BFGS stops fitting in memory; the rounding
differs in the last bits (the tests compare with SciPy's iterates to 1e-8).

Written here rather than calling ``minimize`` because ``minimize`` cannot resume after one
iteration (linesearch.py).  State: ``{"step", "H" (n, n), "f_prev"}``, H in Fortran
order (symmetric, so it is the same matrix; BLAS updates it without a copy).
"""
from __future__ import annotations

import numpy as np
from scipy.linalg.blas import dger

from ..hyper import NONNEGATIVE, Hyper
from .base import SecondOrderMethod, converged, declare, gtol, restoring, wolfe_constants
from .linesearch import LineSearchFailed, wolfe_search


def bfgs_update(H, s, y) -> None:
    """H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T, in place (H symmetric, F order)."""
    ys = float(np.dot(y, s))
    rho = 1000.0 if ys == 0.0 else 1.0 / ys      # SciPy's guard for y.s = 0
    h = H @ y
    for a, u, v in ((-rho, s, h), (-rho, h, s), (rho * rho * float(np.dot(y, h)) + rho, s, s)):
        out = dger(a, u, v, a=H, overwrite_a=1)
        if out is not H:   # BLAS worked on a copy: H was not Fortran-contiguous
            H[...] = out


class BFGS(SecondOrderMethod):
    """BFGS: SciPy's ``minimize(method="BFGS")`` rule for rule, one iteration at a time, its
    inverse-Hessian approximation H (n x n, from I) updated in place::

        stop if max |g_i| <= gtol
        p = -H g;  s = alpha p  (SciPy's Wolfe line search);  y = g_new - g
        H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T,  rho = 1 / y.s

    State: ``{"step", "H", "f_prev"}``.
    """

    name = "bfgs"
    hyperparameters = declare(
        gtol(), *wolfe_constants(),
        Hyper("xrtol", 0.0, NONNEGATIVE, "stop when |s| <= xrtol (xrtol + |x|) (SciPy's)"))

    def init(self, params, segments=None, network=None) -> dict:
        n = np.asarray(params).size
        self.check_memory(n, network=network)
        return {"step": 0, "H": np.eye(n, order="F"), "f_prev": None}

    def _iterate(self, objective, params, state):
        H = state["H"]
        with restoring(params) as x0:
            f, g = objective.loss_and_grad(x0)
            info = {"loss_before": f, "gradient": float(np.linalg.norm(g)), "step": False,
                    "stop": None}
            if converged(g, self.gtol, info):
                params[...] = x0
                return f, info
            f_prev = f + np.linalg.norm(g) / 2 if state["f_prev"] is None else state["f_prev"]
            p = -np.dot(H, g)
            try:
                alpha, loss, g_new = wolfe_search(objective, x0, p, f, g, f_prev, self.c1,
                                                  self.c2, amin=1e-100, amax=1e100)
            except LineSearchFailed as exc:
                params[...] = x0
                info["stop"] = f"line search failed: {exc}"
                return f, info
            s = alpha * p
            x = x0 + s
            params[...] = x
        state["f_prev"] = f
        self.count_step(state)
        info.update(step=True, alpha=alpha)
        if converged(g_new, self.gtol, info):
            return loss, info
        if alpha * np.linalg.norm(p) <= self.xrtol * (self.xrtol + np.linalg.norm(x)):
            info["stop"] = f"converged: step below xrtol {self.xrtol:g}"
            return loss, info
        if not np.isfinite(loss):
            info["stop"] = f"the loss is {loss}"
            return loss, info
        bfgs_update(H, s, g_new - g)
        return loss, info
