"""Newton's method with the exact Hessian and a line search.

One iteration at w, with the exact Hessian H (n x n, built from n Hessian-vector products by the
R-operator, `Objective.hessian`) and the gradient g::

    tau = 0 if H is positive definite, else the smallest of beta, 2 beta, 4 beta, ...
          (beta = 1e-3 max_i |H_ii|) for which H + tau I is: "Cholesky with added multiple
          of the identity", Nocedal & Wright (2006), Algorithm 3.3
    solve (H + tau I) p = -g            (Cholesky)
    alpha = Wolfe line search along p   (SciPy's, starting at the full step alpha = 1)
    w += alpha p

Where H is not positive definite (a saddle, or the non-convex parts of a network's loss) the
pure Newton step would head for a saddle or a maximum; the shift makes p a descent direction
and turns into gradient descent with step 1/tau as tau grows.  N&W take beta = 1e-3 for a
well-scaled problem; here it is relative to H's largest diagonal entry, because the scale of a
network's Hessian depends on the data.  SciPy has no dense-Hessian line-search Newton method
(its ``trust-exact`` is a trust-region method whose radius it does not let us save between
iterations), so this rule is written here.  State: ``{"step"}``; ``info["shift"]`` is tau.
"""
from __future__ import annotations

import numpy as np

from ..hyper import POSITIVE, Hyper
from .base import (SecondOrderError, SecondOrderMethod, converged, declare, gtol, restoring,
                   wolfe_constants)
from .linalg import spd_solve_
from .linesearch import LineSearchFailed, wolfe_search

MAX_SHIFTS = 200   # tau doubles each time: 2^200 beta is beyond any finite Hessian


def shifted_newton_step(H, g, beta_ratio=1e-3):
    """(p, tau) with (H + tau I) p = -g and tau >= 0 the first shift that makes H + tau I
    positive definite (Nocedal & Wright Alg. 3.3; module docstring).  H is left unchanged."""
    diag = np.diag(H)
    beta = beta_ratio * max(float(np.max(np.abs(diag))), np.finfo(float).tiny)
    tau = 0.0 if diag.min() > 0 else -float(diag.min()) + beta
    for _ in range(MAX_SHIFTS):
        A = H.copy()          # the one working copy: H is kept for the next shift
        A[np.diag_indices_from(A)] += tau
        p = spd_solve_(A, -g)
        del A
        if p is not None:
            return p, tau
        tau = max(2.0 * tau, beta)
    raise SecondOrderError(f"no shift tau up to {tau:.3g} makes the Hessian positive definite: "
                           "it is not finite or not symmetric")


class Newton(SecondOrderMethod):
    """Newton's method with the exact Hessian (n Hessian-vector products by the R-operator),
    shifted until positive definite (Nocedal & Wright 2006, Algorithm 3.3), and a Wolfe line
    search::

        stop if max |g_i| <= gtol
        tau = 0, or the first of beta, 2 beta, ... making H + tau I positive definite
              (beta = shift max_i |H_ii|)
        solve (H + tau I) p = -g;  w += alpha p   (SciPy's Wolfe line search from alpha = 1)

    State: ``{"step"}``; ``info["shift"]`` is tau.
    """

    name = "newton"
    hyperparameters = declare(
        *wolfe_constants(), gtol(),
        Hyper("shift", 1e-3, POSITIVE, "beta of the shift, relative to the largest abs(H_ii)"))

    def init(self, params, segments=None, network=None) -> dict:
        self.check_memory(np.asarray(params).size, network=network)
        return {"step": 0}

    def _iterate(self, objective, params, state):
        with restoring(params) as x0:
            f, g = objective.loss_and_grad(x0)
            info = {"loss_before": f, "gradient": float(np.linalg.norm(g)), "step": False,
                    "stop": None}
            if converged(g, self.gtol, info):
                params[...] = x0
                return f, info
            f, g, H = objective.hessian(x0, method=self.name)
            p, info["shift"] = shifted_newton_step(H, g, self.shift)
            del H
            try:
                alpha, loss, _ = wolfe_search(objective, x0, p, f, g, None, self.c1, self.c2)
                params[...] = x0 + alpha * p
                info.update(step=True, alpha=alpha)
            except LineSearchFailed as exc:
                params[...] = x0
                loss, info["stop"] = f, f"line search failed: {exc}"
        self.count_step(state)
        return loss, info
