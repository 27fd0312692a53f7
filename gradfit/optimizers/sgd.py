"""SGD: stochastic gradient descent, with optional (Nesterov) momentum.

Update (``g`` the gradient after clipping and weight decay)::

    momentum == 0:  theta <- theta - lr g
    momentum  > 0:  v <- mu v - lr g;  theta <- theta + v                (velocity form)
    nesterov:       v <- mu v - lr g;  theta <- theta + mu v - lr g

Defaults: ``learning_rate=0.01`` (Keras; torch has 1e-3), ``momentum=0``.  State
``"velocity"`` (when momentum > 0) is Keras's ``momentum`` variable; torch's buffer is
``b = -v / lr`` and torch's rule ``b <- mu b + g; theta <- theta - lr b`` gives the same
trajectory for a constant lr (``base.py`` says why lr sits inside here).  The Nesterov form
is the "reformulated" one at the stored parameters ``theta~ = theta + mu v`` (Sutskever et
al. 2013; Keras's and torch's); ``forms.nesterov_lookahead`` is the lecture's lookahead form
and ``tests/test_optim.py`` proves the two equal.  ``weight_decay`` is torch's coupled L2
(Keras decouples it).
"""
from __future__ import annotations

from .base import Optimizer, declare, learning_rate
from .hyper import FLAG, UNIT, Hyper


def rule(p, g, velocity, lr, mu, momentum, nesterov):
    """One SGD step per element; ``momentum``, ``nesterov`` are flags."""
    d = g * lr
    if momentum:
        velocity = velocity * mu - d
        if nesterov:
            p = (p - d) + velocity * mu
        else:
            p = p + velocity
    else:
        p = p - d
    return p, velocity


class SGD(Optimizer):
    __doc__ = __doc__  # the module docstring above: help(SGD) shows the maths
    names = {"sgd": {}, "momentum": {"momentum": 0.9}, "nesterov": {"momentum": 0.9, "nesterov": True}}
    torch_class = "SGD"
    hyperparameters = declare(
        learning_rate(0.01),
        Hyper("momentum", 0.0, UNIT, "momentum mu of the velocity v <- mu v - lr g", torch="momentum"),
        Hyper("nesterov", False, FLAG, "Nesterov momentum (needs momentum > 0)", torch="nesterov"))
    rule = staticmethod(rule)
    slots = ("velocity",)

    def _validate(self):
        super()._validate()
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("Invalid nesterov value: True with momentum=0.0; "
                             "expected momentum > 0 for Nesterov momentum")

    def kept_slots(self):
        return self.slots if self.momentum > 0 else ()

    def coefficients(self, lr, t):
        return lr, self.momentum

    def flags(self):
        return self.momentum > 0, self.nesterov
