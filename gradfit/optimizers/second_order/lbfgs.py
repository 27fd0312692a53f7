"""L-BFGS: SciPy's ``minimize(method="L-BFGS-B")`` without bounds, one iteration at a time,
its history of the last m pairs (s, y) kept in the state.

Nocedal (1980), Liu & Nocedal (1989); Byrd, Lu, Nocedal & Zhu (1995) for L-BFGS-B.  Without
bounds L-BFGS-B's search direction is d = -H g, H the L-BFGS inverse Hessian of the stored pairs
with H_0 = I / theta, theta = y.y / s.y of the newest pair: computed here by the two-loop
recursion (Nocedal & Wright 2006, Algorithm 7.4) instead of L-BFGS-B's compact matrices (the
same H; only the rounding differs).  One iteration, rule for rule as L-BFGS-B's ``mainlb``::

    d = -H g (no pairs: d = -g)
    MINPACK line search from step 1 (the very first iteration: 1 / |d|), ftol 1e-3, gtol 0.9,
        xtol 0.1, at most 20 evaluations; if it fails: forget the pairs and retry with d = -g
        (with no pairs to forget: stop)
    stop if max |g_new_i| <= gtol, or (f - f_new) <= ftol max(|f|, |f_new|, 1)
    keep (s, y) = (x_new - x, g_new - g) unless s.y <= eps (-g.s); drop the oldest beyond m

Why written here: L-BFGS-B keeps the pairs in its compiled workspace, so ``minimize(...,
maxiter=1)`` would restart without them every epoch and become gradient descent with a line
search.  The tests check that the iterates equal a continuous SciPy L-BFGS-B run.
State: ``{"step", "s" (m, n), "y" (m, n), "count", "newest"}``, a ring of m pairs.
"""
from __future__ import annotations

import numpy as np

from ..hyper import NONNEGATIVE, Hyper, Integer
from .base import SecondOrderMethod, converged, declare, gtol, restoring
from .linesearch import LineSearchFailed, minpack_search

EPS = np.finfo(np.float64).eps
STPMAX = 1e10   # L-BFGS-B's largest step without bounds ("big")


def pair_order(state):
    """Ring indices of the stored pairs, oldest first."""
    m, count, newest = state["s"].shape[0], int(state["count"]), int(state["newest"])
    return [(newest - count + 1 + k) % m for k in range(count)]


def two_loop(g, state):
    """H g for the L-BFGS inverse Hessian of the stored pairs (N&W Algorithm 7.4), H_0 = gamma I
    with gamma = s.y / y.y of the newest pair (1 without pairs)."""
    S, Y = state["s"], state["y"]
    order = pair_order(state)
    q = g.copy()
    alphas = []
    for i in reversed(order):
        rho = 1.0 / float(np.dot(Y[i], S[i]))
        a = rho * float(np.dot(S[i], q))
        q -= a * Y[i]
        alphas.append((i, rho, a))
    if order:
        newest = order[-1]
        q *= float(np.dot(S[newest], Y[newest])) / float(np.dot(Y[newest], Y[newest]))
    for i, rho, a in reversed(alphas):
        b = rho * float(np.dot(Y[i], q))
        q += (a - b) * S[i]
    return q


class LBFGS(SecondOrderMethod):
    """L-BFGS: SciPy's ``minimize(method="L-BFGS-B")`` without bounds, rule for rule, its last
    ``history`` pairs (s, y) kept in the state (a ring)::

        d = -H g   (two-loop recursion over the pairs; none: d = -g)
        MINPACK line search from step 1 (first iteration: 1 / |d|); on failure forget the
        pairs and retry along -g
        stop if max |g_i| <= gtol or the relative loss decrease <= ftol
        keep (s, y) unless s.y <= eps (-g.s)

    State: ``{"step", "s", "y", "count", "newest"}``.
    """

    name = "lbfgs"
    hyperparameters = declare(
        Hyper("history", 10, Integer(1), "pairs (s, y) kept: m (SciPy's maxcor)"),
        gtol(),
        Hyper("ftol", 2.220446049250313e-09, NONNEGATIVE,
              "stop when the relative loss decrease <= ftol (SciPy's)"))

    def init(self, params, segments=None, network=None) -> dict:
        n = np.asarray(params).size
        self.check_memory(n, network=network)
        m = self.history
        return {"step": 0, "s": np.zeros((m, n)), "y": np.zeros((m, n)), "count": 0,
                "newest": m - 1}

    def _iterate(self, objective, params, state):
        with restoring(params) as x0:
            f, g = objective.loss_and_grad(x0)
            info = {"loss_before": f, "gradient": float(np.linalg.norm(g)), "step": False,
                    "stop": None, "memory_reset": False}
            if int(state["step"]) == 0 and converged(g, self.gtol, info):
                params[...] = x0
                return f, info
            try:
                stp, x, loss, g_new, d = self._search(objective, x0, f, g, state, info)
            except LineSearchFailed as exc:
                params[...] = x0
                info["stop"] = f"line search failed: {exc}"
                return f, info
            params[...] = x
        self.count_step(state)
        info.update(step=True, alpha=stp)
        if converged(g_new, self.gtol, info):
            return loss, info
        if f - loss <= self.ftol * max(abs(f), abs(loss), 1.0):
            info["stop"] = f"converged: relative loss decrease <= ftol {self.ftol:g}"
            return loss, info
        self._remember(state, stp * d, g_new - g, -stp * float(np.dot(g, d)))
        return loss, info

    def _search(self, objective, x0, f, g, state, info):
        """L-BFGS-B's line search with its restart rule; returns (stp, x, f, g, d)."""
        first = int(state["step"]) == 0
        while True:
            d = -two_loop(g, state)
            stp = min(1.0 / float(np.linalg.norm(d)), STPMAX) if first else 1.0
            try:
                stp, x, loss, g_new = minpack_search(objective, x0, d, f, g, stp, stpmax=STPMAX)
                return stp, x, loss, g_new, d
            except LineSearchFailed:
                if int(state["count"]) == 0:
                    raise
                state["count"] = 0       # forget the pairs, retry along -g
                info["memory_reset"] = True

    @staticmethod
    def _remember(state, s, y, descent) -> None:
        """Store the pair unless s.y <= eps * (-g.s) (L-BFGS-B skips it then)."""
        if float(np.dot(s, y)) <= EPS * descent:
            return
        m = state["s"].shape[0]
        newest = (int(state["newest"]) + 1) % m
        state["s"][newest], state["y"][newest] = s, y
        state["newest"] = newest
        state["count"] = min(int(state["count"]) + 1, m)
