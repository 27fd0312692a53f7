"""Lion, EvoLved Sign Momentum (Chen et al. 2023, "Symbolic Discovery of Optimization
Algorithms", Algorithm 2)::

    c = b1 m + (1-b1) g                          the interpolation whose sign is the step
    theta <- theta - lr (sign(c) + wd theta)     decoupled weight decay
    m <- b2 m + (1-b2) g

Every element moves by exactly ``lr`` (or 0 where ``c == 0``), so Lion's lr is typically
3-10x smaller than AdamW's and its weight decay 3-10x larger (the paper).  Weight decay is
decoupled, as in the paper and in Keras: ``theta <- theta (1 - lr wd)`` before the step,
which is the paper's line.  Defaults are Keras's: ``1e-3, 0.9, 0.99``, no weight decay.
The same rule as ``keras.optimizers.Lion`` (tested against it and against the paper's
pseudo-code); torch has no Lion.  State: ``"m"``.
"""
from __future__ import annotations

from .base import Optimizer, declare, learning_rate
from .elementwise import sign
from .hyper import UNIT, Hyper


def rule(p, g, m, lr, b1, one_minus_b1, b2, one_minus_b2):
    """One Lion step per element."""
    c = m * b1 + one_minus_b1 * g
    p = p - sign(c) * lr
    m = m * b2 + one_minus_b2 * g
    return p, m


class Lion(Optimizer):
    __doc__ = __doc__  # the module docstring above: help(Lion) shows the maths
    names = {"lion": {}}
    decoupled_weight_decay = True
    hyperparameters = declare(
        learning_rate(1e-3),
        Hyper("beta_1", 0.9, UNIT, "interpolation between m and g inside the sign"),
        Hyper("beta_2", 0.99, UNIT, "decay of the momentum average m"))
    rule = staticmethod(rule)
    slots = ("m",)

    def coefficients(self, lr, t):
        b1, b2 = self.beta_1, self.beta_2
        return lr, b1, 1.0 - b1, b2, 1.0 - b2
