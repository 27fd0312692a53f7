"""Nadam: Adam with Nesterov momentum (Dozat 2016, "Incorporating Nesterov Momentum into Adam")::

    mu_t = b1 (1 - 0.5 * 0.96**(t psi))          the momentum schedule, psi = momentum_decay
    m <- b1 m + (1-b1) g;   v <- b2 v + (1-b2) g**2
    theta <- theta - lr [ mu_{t+1} m / (1 - prod_{i<=t+1} mu_i)
                          + (1 - mu_t) g / (1 - prod_{i<=t} mu_i) ] / (sqrt(v / (1 - b2**t)) + eps)

with ``t`` the 1-based step.  This is ``torch.optim.NAdam`` (coupled ``weight_decay``),
whose ``momentum_decay`` default 0.004 is Dozat's ``0.96**(t/250)``.  Keras 3's ``Nadam`` is
the same rule with ``0.96**t``, i.e. ``momentum_decay=1`` (and eps 1e-7): ``Nadam(epsilon=1e-7,
momentum_decay=1.0)`` is Keras's Nadam exactly (tested against both).  Defaults: Keras's and
the paper's ``1e-3, 0.9, 0.999``, eps ``1e-8`` as Adam's.

The running product ``prod mu_i`` depends on ``t`` alone, so it is no state: it is kept
between calls and recomputed from 1 when ``t`` jumps (a resumed run), multiplying in the
same order, so a resumed run gives the same bits.  State: ``"m"``, ``"v"``.
"""
from __future__ import annotations

from .base import Optimizer, declare, learning_rate
from .elementwise import sqrt
from .hyper import NONNEGATIVE, POSITIVE, UNIT, Hyper


def rule(p, g, m, v, lr, b1, one_minus_b1, b2, one_minus_b2, c_m, c_g, inv_bc2, eps):
    """One Nadam step per element; ``c_m``, ``c_g`` are the bracket's two coefficients."""
    m = m * b1 + one_minus_b1 * g
    v = v * b2 + one_minus_b2 * (g * g)
    den = sqrt(v * inv_bc2) + eps
    p = p - ((c_m * m + c_g * g) / den) * lr
    return p, m, v


class Nadam(Optimizer):
    __doc__ = __doc__  # the module docstring above: help(Nadam) shows the maths
    names = {"nadam": {}}
    torch_class = "NAdam"
    hyperparameters = declare(
        learning_rate(1e-3),
        Hyper("beta_1", 0.9, UNIT, "decay of m; the momentum schedule mu_t tends to it",
              torch="betas[0]"),
        Hyper("beta_2", 0.999, UNIT, "decay of the second-moment average v", torch="betas[1]"),
        Hyper("epsilon", 1e-8, POSITIVE, "added to the root of v_hat", torch="eps"),
        options=(Hyper("momentum_decay", 0.004, NONNEGATIVE, "psi of mu_t = b1 (1 - 0.5 * "
                       "0.96**(t psi)); Keras's Nadam: 1", keras=None, torch="momentum_decay"),))
    rule = staticmethod(rule)
    slots = ("m", "v")
    _product = (None, 0, 1.0)   # ((b1, psi), t, prod_{i<=t} mu_i), the last one computed

    def _mu(self, t):
        return self.beta_1 * (1.0 - 0.5 * 0.96 ** (t * self.momentum_decay))

    def _mu_product(self, t):
        """``prod_{i<=t} mu_i``, from the last one kept when it is ``t`` or ``t - 1``."""
        key, done, product = self._product
        if key != (self.beta_1, self.momentum_decay) or done > t:
            done, product = 0, 1.0
        for i in range(done + 1, t + 1):
            product *= self._mu(i)
        self._product = ((self.beta_1, self.momentum_decay), t, product)
        return product

    def coefficients(self, lr, t):
        b1, b2 = self.beta_1, self.beta_2
        mu, mu_next = self._mu(t), self._mu(t + 1)
        product = self._mu_product(t)
        c_m = mu_next / (1.0 - product * mu_next)
        c_g = (1.0 - mu) / (1.0 - product)
        return lr, b1, 1.0 - b1, b2, 1.0 - b2, c_m, c_g, 1.0 / (1.0 - b2**t), self.epsilon
