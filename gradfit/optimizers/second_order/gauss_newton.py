"""Gauss-Newton with a line search (damped Gauss-Newton; Nocedal & Wright 2006, Sec. 10.3).

One iteration at the weights w, with the gradient g and the (generalized) Gauss-Newton matrix G
of the batch-mean loss (`Objective.gauss_newton`: 2 J^T J / N_e for mse, J^T H J for the
cross-entropies, see lm.py)::

    solve G p = -g                      (Cholesky, in place; G must be positive definite)
    alpha = Wolfe line search along p   (SciPy's, starting at the full step alpha = 1)
    w += alpha p

G is only positive SEMI-definite: it is singular whenever the network has more weights than
residuals (n > N d) or redundant weights, and always for a softmax output layer with a bias
(adding one constant to every logit leaves the softmax unchanged, so that direction of the
biases has zero curvature).  Then there is no Gauss-Newton step, and this method
says so (before changing anything) and points to 'lm', whose damping mu I is exactly the cure.
State: ``{"step"}``.
"""
from __future__ import annotations

import numpy as np

from .base import (SecondOrderError, SecondOrderMethod, converged, declare, gtol, restoring,
                   wolfe_constants)
from .linalg import spd_solve_
from .linesearch import LineSearchFailed, wolfe_search


class GaussNewton(SecondOrderMethod):
    """Gauss-Newton with a Wolfe line search (Nocedal & Wright 2006, Sec. 10.3), on the
    generalized Gauss-Newton matrix G of the loss; refuses a singular G (use LM)::

        stop if max |g_i| <= gtol
        solve G p = -g                  (Cholesky, in place)
        w += alpha p,  alpha from SciPy's Wolfe line search starting at 1

    State: ``{"step"}``.
    """

    name = "gauss_newton"
    hyperparameters = declare(*wolfe_constants(), gtol())

    def check(self, objective) -> None:
        objective.check_gauss_newton(self.name)

    def init(self, params, segments=None, network=None) -> dict:
        self.check_memory(np.asarray(params).size, network=network)
        return {"step": 0}

    def _iterate(self, objective, params, state):
        self.check(objective)
        with restoring(params) as x0:
            f, g = objective.loss_and_grad(x0)
            info = {"loss_before": f, "gradient": float(np.linalg.norm(g)), "step": False,
                    "stop": None}
            if converged(g, self.gtol, info):
                params[...] = x0
                return f, info
            f, g, G = objective.gauss_newton(x0, method=self.name)
            p = spd_solve_(G, -g)     # G is factorised where it lies: one n x n array
            del G
            if p is None:
                raise SecondOrderError(self._singular(objective))
            try:
                alpha, loss, _ = wolfe_search(objective, x0, p, f, g, None, self.c1, self.c2)
                params[...] = x0 + alpha * p
                info.update(step=True, alpha=alpha)
            except LineSearchFailed as exc:
                params[...] = x0
                loss, info["stop"] = f, f"line search failed: {exc}"
        self.count_step(state)
        return loss, info

    @staticmethod
    def _singular(objective) -> str:
        n, residuals = objective.n, objective.residuals
        fewer = "; fewer residuals than weights" if residuals < n else ""
        return (f"the Gauss-Newton system is singular: JᵀJ ({n:,} x {n:,}) is not positive "
                f"definite at these weights ({residuals:,} residuals for {n:,} weights{fewer}); "
                "use optimizer 'lm', whose damping mu I makes the system solvable")
