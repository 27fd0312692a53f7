"""Adadelta (Zeiler 2012, Algorithm 1), epsilon inside both roots::

    E[g2]  <- rho E[g2] + (1-rho) g**2
    dx      = sqrt(E[dx2] + eps) / sqrt(E[g2] + eps) * g
    E[dx2] <- rho E[dx2] + (1-rho) dx**2
    theta  <- theta - lr dx

Defaults are Zeiler's: ``learning_rate=1.0, rho=0.95, epsilon=1e-6``.  The same rule as
torch (whose default rho is 0.9) and as Keras (whose default lr is 1e-3, which barely moves:
Adadelta's step already has the units of theta); the lecture writes it the same way.
State: ``"accum_grad"`` (E[g2]), ``"accum_update"`` (E[dx2]).
"""
from __future__ import annotations

from .base import Optimizer, declare, learning_rate
from .elementwise import sqrt
from .hyper import POSITIVE, UNIT, Hyper


def rule(p, g, accum_grad, accum_update, lr, rho, one_minus_rho, eps):
    """One Adadelta step per element."""
    accum_grad = accum_grad * rho + one_minus_rho * (g * g)
    dx = (g * sqrt(accum_update + eps)) / sqrt(accum_grad + eps)
    accum_update = accum_update * rho + one_minus_rho * (dx * dx)
    p = p - dx * lr
    return p, accum_grad, accum_update


class Adadelta(Optimizer):
    __doc__ = __doc__  # the module docstring above: help(Adadelta) shows the maths
    names = {"adadelta": {}}
    torch_class = "Adadelta"
    hyperparameters = declare(
        learning_rate(1.0),
        Hyper("rho", 0.95, UNIT, "decay of the averages of g**2 and dx**2", torch="rho"),
        Hyper("epsilon", 1e-6, POSITIVE, "added inside both roots", torch="eps"))
    rule = staticmethod(rule)
    slots = ("accum_grad", "accum_update")

    def coefficients(self, lr, t):
        return lr, self.rho, 1.0 - self.rho, self.epsilon
