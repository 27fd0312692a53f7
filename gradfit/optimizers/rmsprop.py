"""RMSprop (Hinton, lecture 6e, 2012), optionally centered (Graves 2013) and with momentum::

    v <- rho v + (1-rho) g**2
    centered: mg <- rho mg + (1-rho) g;  s = max(v - mg**2, 0)    else s = v
    step = g / (sqrt(s) + eps)
    momentum == 0: theta <- theta - lr step
    momentum  > 0: u <- mu u - lr step;  theta <- theta + u

Defaults: ``learning_rate=1e-3, rho=0.9`` (Hinton, Keras), ``epsilon=1e-7`` (Keras).  torch's
defaults are lr 1e-2, alpha 0.99, eps 1e-8, with eps outside the root, as here; Keras puts
eps inside: ``epsilon_inside_sqrt=True`` matches Keras exactly.  The momentum buffer holds lr
(Keras; torch keeps lr outside; equal for a constant lr).  ``v - mg**2`` is never negative in
exact arithmetic, but rounding makes it slightly negative (and its root NaN, as in torch)
once the gradient has stopped changing: it is clamped at 0.  State: ``"rms"``,
``"momentum"`` (momentum > 0; Keras's buffer with the opposite sign), ``"mean_grad"``
(centered).
"""
from __future__ import annotations

from .base import Optimizer, declare, learning_rate
from .elementwise import maximum, sqrt
from .hyper import FLAG, POSITIVE, UNIT, Hyper


def rule(p, g, rms, momentum, mean_grad, lr, rho, one_minus_rho, eps, mu, zero,
         use_momentum, centered, inside):
    """One RMSprop step per element; ``use_momentum``, ``centered``, ``inside`` are flags."""
    rms = rms * rho + one_minus_rho * (g * g)
    s = rms
    if centered:
        mean_grad = mean_grad * rho + one_minus_rho * g
        s = maximum(rms - mean_grad * mean_grad, zero)
    if inside:
        den = sqrt(s + eps)
    else:
        den = sqrt(s) + eps
    d = (g / den) * lr
    if use_momentum:
        momentum = momentum * mu - d
        p = p + momentum
    else:
        p = p - d
    return p, rms, momentum, mean_grad


class RMSprop(Optimizer):
    __doc__ = __doc__  # the module docstring above: help(RMSprop) shows the maths
    names = {"rmsprop": {}}
    torch_class = "RMSprop"
    hyperparameters = declare(
        learning_rate(1e-3),
        Hyper("rho", 0.9, UNIT, "decay of the average of g**2", torch="alpha"),
        Hyper("momentum", 0.0, UNIT, "momentum mu of the step's velocity", torch="momentum"),
        Hyper("epsilon", 1e-7, POSITIVE, "added to the root", torch="eps"),
        Hyper("centered", False, FLAG, "divide by the root of the variance estimate v - mg**2",
              torch="centered"),
        options=(Hyper("epsilon_inside_sqrt", False, FLAG, "g / sqrt(s + eps) (Keras's form)",
                       keras=None),))
    rule = staticmethod(rule)
    slots = ("rms", "momentum", "mean_grad")

    def kept_slots(self):
        return ("rms",) + (("momentum",) if self.momentum > 0 else ()) + \
            (("mean_grad",) if self.centered else ())

    def coefficients(self, lr, t):
        return lr, self.rho, 1.0 - self.rho, self.epsilon, self.momentum, 0.0

    def flags(self):
        return self.momentum > 0, self.centered, self.epsilon_inside_sqrt
