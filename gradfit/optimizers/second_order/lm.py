"""Levenberg-Marquardt with MATLAB ``trainlm``'s rules and defaults.

Hagan & Menhaj (1994), "Training feedforward networks with the Marquardt algorithm", IEEE
Trans. Neural Networks 5(6); MATLAB's ``trainlm`` (Deep Learning Toolbox).  With J the
Jacobian of the errors and e the errors, MATLAB's normalised sums (mse: divided by the number
of errors N_e = N d)

    jj = J^T J / N_e,    je = J^T e / N_e,    perf = e^T e / N_e       (sse: no division)

one iteration is (``trainlm``'s ``trainingIteration``)::

    while mu <= mu_max:
        dx = -(jj + mu I) \\ je              (a singular or ill-conditioned system: rejected)
        if perf(x + dx) < perf(x):  x += dx;  mu = max(mu * mu_dec, 1e-20);  break
        mu = mu * mu_inc

and training stops (checked before each iteration) when ``2 sqrt(je^T je) <= min_grad`` (the
gradient of perf) or ``mu >= mu_max``.  Defaults as MATLAB's: mu 1e-3, mu_dec 0.1, mu_inc
10, mu_max 1e10, min_grad 1e-7.

In gradfit's terms, for the batch-mean loss L with gradient g and Gauss-Newton matrix G
(`Objective.gauss_newton`), jj = s G / 2 and je = s g / 2 with s = 1 for ``performance="mse"``
and s = N_e for ``"sse"``, so the step solves (G + (2 mu / s) I) dx = -g.

**Differences from trainlm, each on purpose:**

* ``max_fail`` (6 validation failures in MATLAB) is not part of the method: it is early
  stopping on a validation set, which gradfit does with a callback:
  ``EarlyStopping(monitor="val_loss", patience=6, restore_best_weights=True)`` (MATLAB also
  returns the best network).  ``epochs``, ``goal`` and ``time`` are the training loop's.
* MATLAB's ``fitnet`` also splits the data 70/15/15 at random and maps inputs and targets to
  [-1, 1] (``mapminmax``); gradfit trains on the data it is given.
* The stop tests run at the start of the next ``iterate`` (which then takes no step and
  returns ``info["stop"]``), because J^T J is computed there rather than at the end of the
  previous iteration; the iterates are the same.
* Losses: mse (trainlm's own) and, beyond MATLAB, the cross-entropies whose Hessian in the
  network's output is positive semi-definite, through the generalized Gauss-Newton matrix
  J^T H J (the softmax or sigmoid cross-entropy Hessian in the middle; Schraudolph 2002):
  the same rules with that G, ``performance="mse"`` (s = 1).  mae and categorical
  cross-entropy on probabilities (no softmax output, not from_logits) are refused.
* The system is solved by LAPACK's Cholesky (``dpotrf`` in place on a working copy,
  linalg.py); MATLAB's ``\\`` warning for a singular or badly conditioned matrix is the
  test SciPy's solve applies (reciprocal condition number below machine epsilon): the trial
  is rejected and mu increased, as MATLAB does.
* Weight penalties (kernel_regularizer L2) enter G and g exactly (they are quadratic);
  MATLAB's ``regularization`` ratio is a different formula.
"""
from __future__ import annotations

import math

import numpy as np

from ...checks import ArgumentError
from ..hyper import NONNEGATIVE, POSITIVE, Choice, Hyper, Number
from .base import SecondOrderError, SecondOrderMethod, declare, restoring
from .linalg import spd_solve_

MU_FLOOR = 1e-20   # MATLAB's lower bound of mu after an accepted step


def damped_step(G, g, lam):
    """dx solving (G + lam I) dx = -g, or None when the matrix is (numerically) singular or
    not positive definite (MATLAB's rejected ``\\``).  G is left unchanged; one working copy
    is factorised in place (linalg.py)."""
    A = G.copy()
    A[np.diag_indices_from(A)] += lam
    return spd_solve_(A, -g)


class LevenbergMarquardt(SecondOrderMethod):
    """Levenberg-Marquardt with MATLAB ``trainlm``'s rules and defaults (Hagan & Menhaj 1994);
    mse (MATLAB's performance) or, beyond MATLAB, the cross-entropies through the generalized
    Gauss-Newton matrix.  With G and g the Gauss-Newton matrix and gradient of the loss,
    s = 1 for mse and N_e (the number of errors) for sse::

        stop if s |g| <= min_grad or mu >= mu_max
        while mu <= mu_max:
            solve (G + 2 mu / s I) dx = -g      (Cholesky; singular: rejected)
            if loss(w + dx) < loss(w): w += dx; mu = max(mu mu_dec, 1e-20); break
            mu = mu mu_inc

    State: ``{"step", "mu"}``.  The differences from trainlm are in lm.py's docstring.
    """

    name = "lm"
    hyperparameters = declare(
        Hyper("mu", 1e-3, POSITIVE, "initial damping (MATLAB trainParam.mu)"),
        Hyper("mu_dec", 0.1, Number(0.0, 1.0, low_open=True),
              "mu factor after an accepted step (MATLAB mu_dec)"),
        Hyper("mu_inc", 10.0, Number(1.0, low_open=True),
              "mu factor after a rejected trial (MATLAB mu_inc)"),
        Hyper("mu_max", 1e10, POSITIVE, "stop when mu reaches it (MATLAB mu_max)"),
        Hyper("min_grad", 1e-7, NONNEGATIVE,
              "stop when the performance gradient's norm is below it (MATLAB min_grad)"),
        Hyper("performance", "mse", Choice("mse", "sse"),
              "MATLAB's performFcn: 'mse' (normalised sums) or 'sse'"),
    )

    def _validate(self) -> None:
        if not self.mu < self.mu_max:
            raise ArgumentError("mu", self.mu, f"below mu_max = {self.mu_max:g} (at mu_max "
                                "trainlm stops at once)", owner="LevenbergMarquardt")

    def check(self, objective) -> None:
        objective.check_gauss_newton(self.name)
        if self.performance == "sse" and objective.loss_name != "mse":
            raise SecondOrderError(f"performance='sse' is the sum of squared errors: it needs "
                                   f"loss='mse', got {objective.loss_name!r}")

    def init(self, params, segments=None, network=None) -> dict:
        self.check_memory(np.asarray(params).size, network=network)
        return {"step": 0, "mu": self.mu}

    def _iterate(self, objective, params, state):
        self.check(objective)
        scale = 1.0 if self.performance == "mse" else float(objective.residuals)
        mu = float(state["mu"])
        with restoring(params) as x0:
            f, g, G = objective.gauss_newton(x0, method=self.name)
            gradient = scale * float(np.linalg.norm(g))     # MATLAB: 2 sqrt(je' je)
            info = {"loss_before": f, "gradient": gradient, "mu": mu, "trials": 0, "step": False,
                    "stop": self._stop(gradient, mu)}
            loss = f
            while info["stop"] is None and mu <= self.mu_max:
                dx = damped_step(G, g, 2.0 * mu / scale)
                if dx is not None:
                    f2 = objective.loss(x0 + dx)
                    info["trials"] += 1
                    if math.isfinite(f2) and f2 < f:
                        loss, mu = f2, max(mu * self.mu_dec, MU_FLOOR)
                        params[...] = x0 + dx
                        info["step"] = True
                        break
                mu *= self.mu_inc
            if not info["step"]:
                params[...] = x0
        if info["stop"] is None:
            state["mu"] = mu
            self.count_step(state)
            info["stop"] = self._stop(None, mu)   # mu beyond mu_max: no step will be found
        info.update(mu=mu)
        return loss, info

    def _stop(self, gradient, mu):
        """trainlm's stopping tests (those that belong to the method), or None; gradient None:
        only the test on mu."""
        if gradient is not None and gradient <= self.min_grad:
            return f"minimum gradient reached ({gradient:.3g} <= min_grad {self.min_grad:g})"
        if mu >= self.mu_max:
            return f"maximum mu reached ({mu:.3g} >= mu_max {self.mu_max:g})"
        return None
