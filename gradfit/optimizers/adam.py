"""Adam (Kingma & Ba 2015, Algorithm 1), optionally AMSGrad (Reddi et al. 2018)::

    m <- b1 m + (1-b1) g;   v <- b2 v + (1-b2) g**2;   (amsgrad: vmax <- max(vmax, v), used for v)
    theta <- theta - lr * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)

with ``t`` the 1-based step.  The lecture's slide writes the bias correction as ``1 - beta``
without ``**t``: a typo.  Defaults are the paper's: ``1e-3, 0.9, 0.999, 1e-8``.  This is
torch's rule (AMSGrad as torch: the maximum of the raw ``v``).  The bias corrections are
multiplications by their reciprocals: one division per element instead of three.

The other two forms, as options:

* ``epsilon_hat=True``: **Keras's form** (the paper's "epsilon-hat" remark), exactly::

      lr_t = lr * sqrt(1 - b2**t) / (1 - b1**t)
      theta <- theta - lr_t * m / (sqrt(v) + eps)           (amsgrad: vmax for v)

  which equals the rule above with ``eps * sqrt(1 - b2**t)`` in place of ``eps``, so no
  constant eps makes the two agree (Keras's default eps is also 1e-7).  Here it is the same
  rule with other coefficients: ``inv_bc2 = 1`` and ``inv_bc1 = sqrt(1 - b2**t) / (1 - b1**t)``.
* ``epsilon_inside_sqrt=True``: the lecture's ``m_hat / sqrt(v_hat + eps)``.

State: ``"m"``, ``"v"``, ``"vmax"`` (amsgrad).  ``weight_decay`` is torch's coupled L2; use
``AdamW`` for decoupled decay.
"""
from __future__ import annotations

import math

from ..checks import ArgumentError
from .base import Optimizer, declare, learning_rate
from .elementwise import maximum, sqrt
from .hyper import FLAG, POSITIVE, UNIT, Hyper


def rule(p, g, m, v, vmax, lr, b1, one_minus_b1, b2, one_minus_b2, inv_bc1, inv_bc2, eps,
         amsgrad, inside):
    """One Adam step per element; ``amsgrad``, ``inside`` are flags."""
    m = m * b1 + one_minus_b1 * g
    v = v * b2 + one_minus_b2 * (g * g)
    if amsgrad:
        vmax = maximum(vmax, v)
        s = vmax * inv_bc2
    else:
        s = v * inv_bc2
    if inside:
        den = sqrt(s + eps)
    else:
        den = sqrt(s) + eps
    p = p - ((m / den) * inv_bc1) * lr
    return p, m, v, vmax


class Adam(Optimizer):
    __doc__ = __doc__  # the module docstring above: help(Adam) shows the maths
    names = {"adam": {}, "amsgrad": {"amsgrad": True}}
    torch_class = "Adam"
    hyperparameters = declare(
        learning_rate(1e-3),
        Hyper("beta_1", 0.9, UNIT, "decay of the first-moment average m", torch="betas[0]"),
        Hyper("beta_2", 0.999, UNIT, "decay of the second-moment average v", torch="betas[1]"),
        Hyper("epsilon", 1e-8, POSITIVE, "added to the root of v_hat", torch="eps"),
        Hyper("amsgrad", False, FLAG, "AMSGrad: divide by the root of the running maximum of v",
              torch="amsgrad"),
        options=(Hyper("epsilon_inside_sqrt", False, FLAG, "m_hat / sqrt(v_hat + eps) (the "
                       "lecture's form)", keras=None),
                 Hyper("epsilon_hat", False, FLAG, "Keras's form: lr sqrt(1-b2**t)/(1-b1**t) "
                       "m / (sqrt(v) + eps)", keras=None)))
    rule = staticmethod(rule)
    slots = ("m", "v", "vmax")

    def _validate(self):
        super()._validate()
        if self.epsilon_inside_sqrt and self.epsilon_hat:
            raise ArgumentError("epsilon_hat", True, "False with epsilon_inside_sqrt=True",
                                "choose one of the two epsilon forms")

    def kept_slots(self):
        return ("m", "v", "vmax") if self.amsgrad else ("m", "v")

    def coefficients(self, lr, t):
        b1, b2 = self.beta_1, self.beta_2
        if self.epsilon_hat:
            inv_bc1, inv_bc2 = math.sqrt(1.0 - b2**t) / (1.0 - b1**t), 1.0
        else:
            inv_bc1, inv_bc2 = 1.0 / (1.0 - b1**t), 1.0 / (1.0 - b2**t)
        return lr, b1, 1.0 - b1, b2, 1.0 - b2, inv_bc1, inv_bc2, self.epsilon

    def flags(self):
        return self.amsgrad, self.epsilon_inside_sqrt
