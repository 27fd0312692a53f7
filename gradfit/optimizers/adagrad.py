"""Adagrad (Duchi, Hazan & Singer 2011)::

    r <- r + g**2;   theta <- theta - lr g / (sqrt(r) + eps)

Defaults are torch's: ``learning_rate=0.01, epsilon=1e-10, initial_accumulator_value=0``.
``epsilon_inside_sqrt=True`` gives the lecture's ``g / sqrt(r + eps)``, which is Keras's form
(Keras's defaults: lr 1e-3, eps 1e-7, initial_accumulator_value 0.1).  torch's ``lr_decay``
is ``schedules.InverseTimeDecay``.  State: ``"accumulator"``, starting at
``initial_accumulator_value``.
"""
from __future__ import annotations

from .base import Optimizer, declare, learning_rate
from .elementwise import sqrt
from .hyper import FLAG, NONNEGATIVE, POSITIVE, Hyper


def rule(p, g, accumulator, lr, eps, inside):
    """One Adagrad step per element; ``inside`` (a flag): eps inside the root."""
    accumulator = accumulator + g * g
    if inside:
        den = sqrt(accumulator + eps)
    else:
        den = sqrt(accumulator) + eps
    p = p - (g / den) * lr
    return p, accumulator


class Adagrad(Optimizer):
    __doc__ = __doc__  # the module docstring above: help(Adagrad) shows the maths
    names = {"adagrad": {}}
    torch_class = "Adagrad"
    hyperparameters = declare(
        learning_rate(0.01),
        Hyper("initial_accumulator_value", 0.0, NONNEGATIVE, "starting value of r",
              torch="initial_accumulator_value"),
        Hyper("epsilon", 1e-10, POSITIVE, "added to the root of r", torch="eps"),
        options=(Hyper("epsilon_inside_sqrt", False, FLAG,
                       "g / sqrt(r + eps) (the lecture's and Keras's form)", keras=None),))
    rule = staticmethod(rule)
    slots = ("accumulator",)

    def initial_value(self, slot):
        return self.initial_accumulator_value

    def coefficients(self, lr, t):
        return lr, self.epsilon

    def flags(self):
        return (self.epsilon_inside_sqrt,)
