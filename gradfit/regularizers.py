"""Weight penalties added to the loss, as ``keras.regularizers``: ``L2(l2)`` adds
``l2 * sum(w**2)``, ``L1(l1)`` adds ``l1 * sum(|w|)``, ``L1L2(l1, l2)`` both.

``Dense(kernel_regularizer=L2(1e-4))`` puts the penalty of its kernel into the training loss
(and into ``evaluate``'s and the validation loss, as Keras does) and its gradient
``2 l2 w`` (``l1 sign(w)``) into the kernel's gradient, once per step after the data
gradient is complete (in data-parallel training: after the Allreduce, the same on every
rank).  The gradient-noise-scale norms are those of the data gradient alone.

An L2 penalty's gradient is the optimizers' coupled ``weight_decay`` with
``weight_decay = 2 * l2`` (torch's convention, any optimizer); the penalty also shows in the
reported loss.  Decoupled decay (``AdamW``, Loshchilov & Hutter 2019) differs from both for
adaptive optimizers: it is not scaled by the optimizer's preconditioner.
"""
from __future__ import annotations

import math

from .backend import xp


def _factor(name, value):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and value >= 0
    if not ok:
        raise ValueError(f"regularization factor {name} must be a finite number >= 0, got {value!r}")
    return float(value)


class L1L2:
    """``l1 * sum(|w|) + l2 * sum(w**2)`` (Keras's defaults: 0 and 0)."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _factor("l1", l1)
        self.l2 = _factor("l2", l2)

    def __call__(self, w) -> float:
        x = xp()
        value = 0.0
        if self.l1:
            value += self.l1 * float(x.abs(w).sum())
        if self.l2:
            value += self.l2 * float(x.vdot(w, w))
        return value

    def add_gradient(self, w, grad) -> None:
        """``grad += d(penalty)/dw`` in place."""
        x = xp()
        if self.l1:
            grad += self.l1 * x.sign(w)
        if self.l2:
            grad += (2.0 * self.l2) * w

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in self.get_config().items())})"


class L1(L1L2):
    """``l1 * sum(|w|)`` (Keras's default l1 = 0.01)."""

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 * sum(w**2)`` (Keras's default l2 = 0.01)."""

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self) -> dict:
        return {"l2": self.l2}


# Keras's function-style names
l1, l2, l1_l2 = L1, L2, L1L2
REGULARIZERS = {"L1": L1, "L2": L2, "L1L2": L1L2}


def get(identifier):
    """None, an instance, ``"l1"`` / ``"l2"`` (Keras's defaults), or the
    ``{"class_name": ..., "config": {...}}`` form that ``serialize`` writes."""
    if identifier is None or isinstance(identifier, L1L2):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in ("l1", "l2"):
        return REGULARIZERS[identifier.upper()]()
    if isinstance(identifier, dict) and identifier.get("class_name") in REGULARIZERS:
        return REGULARIZERS[identifier["class_name"]](**identifier.get("config", {}))
    raise ValueError(f"unknown regularizer {identifier!r}: use 'l1', 'l2', "
                     "gradfit.regularizers.L1(...), L2(...) or L1L2(...)")


def serialize(reg):
    return None if reg is None else {"class_name": type(reg).__name__, "config": reg.get_config()}
