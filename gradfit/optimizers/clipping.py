"""Gradient clipping, Keras's three kinds, over ONE flat gradient array, in place.

``Optimizer.update`` applies at most one of them to the raw gradient, before weight decay
and the optimizer's rule.  Each function overwrites ``g`` (1-D, the size of the flat
parameter buffer) and returns it.  Arrays come from ``gradfit.backend.xp()`` (numpy or
cupy); only ``xp().clip`` and ``xp().dot`` are used, which exist in both.
"""
from __future__ import annotations

import math

from ..backend import xp


def clip_by_value_(g, clipvalue: float):
    """``g <- clip(g, -c, c)`` elementwise (Keras ``clipvalue``)."""
    return xp().clip(g, -clipvalue, clipvalue, out=g)


def _norm(a) -> float:
    return math.sqrt(float(xp().dot(a, a)))


def clip_by_norm_(g, clipnorm: float, segments=None):
    """Clip each variable's gradient by its own L2 norm (Keras ``clipnorm``).

    For every segment ``s = (start, stop)`` of the flat buffer (one Keras variable):
    ``g_s <- g_s * c / max(||g_s||, c)``.  Without ``segments`` the whole buffer is one
    variable.  This is a loop over *variables* (a dot product each), not over elements:
    the norm is per variable by definition.
    """
    for start, stop in segments or ((0, g.shape[0]),):
        view = g[start:stop]
        norm = _norm(view)
        if norm > clipnorm:
            view *= clipnorm / norm
    return g


def global_norm(g) -> float:
    """``||g||_2`` of the whole flat gradient."""
    return _norm(g)


def clip_by_global_norm_(g, clipnorm: float):
    """``g <- g * c / max(||g||, c)`` over the whole buffer (Keras ``global_clipnorm``).

    PyTorch's ``clip_grad_norm_`` uses ``min(1, c / (||g|| + 1e-6))`` instead: the two
    differ by a relative ``1e-6 / ||g||`` when clipping is active.
    """
    norm = global_norm(g)
    if norm > clipnorm:
        g *= clipnorm / norm
    return g
