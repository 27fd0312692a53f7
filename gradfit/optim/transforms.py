"""The optimizer maths, named once, over ONE flat array (optax-style building blocks).

Every function here works **in place** on the flat arrays it is given (the trailing
underscore says so) and returns the array it wrote, so a named optimizer is a few of
these calls in a row (see ``optimizers.py``).  Shapes: every array is 1-D of length
``n`` (the size of the flat parameter buffer) and of one dtype; ``lr``, ``decay``,
``eps`` are Python floats.

Which arrays are consumed:

* ``g`` (the gradient) is overwritten by the clipping and L2 functions and by the
  ``scale_by_*`` functions, which turn it into the *direction* ``d`` the optimizer steps
  along: ``theta <- theta - lr * d``.  Callers must not rely on ``g`` afterwards.
* state arrays (``m``, ``v``, ...) are updated in place; they are the optimizer state.

Arrays come from ``gradfit.backend.xp()`` (numpy or cupy); only ``xp().sqrt``,
``xp().maximum``, ``xp().clip`` and ``xp().dot`` are used, all of which exist in both.
"""
from __future__ import annotations

import math

from ..backend import xp


# ------------------------------------------------------------------ gradient clipping
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


# ------------------------------------------------------------------ weight decay
def add_decayed_weights_(g, params, weight_decay: float):
    """Coupled L2 decay, as ``torch.optim`` ``weight_decay``: ``g <- g + wd * theta``."""
    g += weight_decay * params
    return g


def decay_weights_(params, lr: float, weight_decay: float):
    """Decoupled decay (AdamW, Loshchilov & Hutter 2019): ``theta <- theta * (1 - lr*wd)``."""
    params *= 1.0 - lr * weight_decay
    return params


# ------------------------------------------------------------------ moments
def ema_(acc, x, decay: float):
    """Exponential moving average: ``acc <- decay * acc + (1 - decay) * x``."""
    acc *= decay
    acc += (1.0 - decay) * x
    return acc


def ema_sq_(acc, x, decay: float):
    """Moving average of the square: ``acc <- decay * acc + (1 - decay) * x**2``."""
    acc *= decay
    acc += (1.0 - decay) * (x * x)
    return acc


def bias_correction(decay: float, t: int) -> float:
    """``1 - decay**t``: the bias of a moving average started at 0 after ``t`` steps.

    The lecture's slide writes ``1 - beta`` without the power ``t``: a typo; Kingma & Ba
    (2015), Algorithm 1 divide by ``1 - beta**t``.
    """
    return 1.0 - decay**t


def _root_(denom, eps: float, inside: bool):
    """``sqrt(denom) + eps`` (``inside=False``) or ``sqrt(denom + eps)``, in place."""
    if inside:
        denom += eps
        return xp().sqrt(denom, out=denom)
    xp().sqrt(denom, out=denom)
    denom += eps
    return denom


# ------------------------------------------------------------------ preconditioners
def scale_by_rss_(g, accumulator, eps: float, inside: bool = False):
    """Adagrad (Duchi, Hazan & Singer 2011): ``r <- r + g**2``; ``d = g / (sqrt(r) + eps)``.

    ``inside=True`` gives the lecture's and Keras's ``d = g / sqrt(r + eps)``.
    """
    accumulator += g * g
    denom = _root_(accumulator.copy(), eps, inside)
    g /= denom
    return g


def scale_by_rms_(g, rms, eps: float, rho: float, mean_grad=None, inside: bool = False):
    """RMSprop (Hinton 2012): ``v <- rho v + (1-rho) g**2``; ``d = g / (sqrt(v) + eps)``.

    Centered (Graves 2013, ``mean_grad`` given): ``mg <- rho mg + (1-rho) g`` and the
    denominator uses ``max(v - mg**2, 0)`` (an estimate of the variance: never negative in
    exact arithmetic, but rounding makes it slightly negative, and its root NaN, once the
    gradient has been constant for a while; torch gives NaN there).  ``inside=True`` puts
    eps inside the root, as Keras does.
    """
    ema_sq_(rms, g, rho)
    if mean_grad is None:
        denom = rms.copy()
    else:
        ema_(mean_grad, g, rho)
        denom = rms - mean_grad * mean_grad
        xp().maximum(denom, 0, out=denom)
    g /= _root_(denom, eps, inside)
    return g


def scale_by_adadelta_(g, accum_grad, accum_update, eps: float, rho: float):
    """Adadelta (Zeiler 2012, Algorithm 1), epsilon inside both roots::

        E[g2]  <- rho E[g2] + (1-rho) g**2
        d       = sqrt(E[dx2] + eps) / sqrt(E[g2] + eps) * g
        E[dx2] <- rho E[dx2] + (1-rho) d**2

    The step is ``theta <- theta - lr * d`` (Zeiler has lr = 1).
    """
    ema_sq_(accum_grad, g, rho)
    g *= xp().sqrt(accum_update + eps)
    g /= xp().sqrt(accum_grad + eps)
    ema_sq_(accum_update, g, rho)
    return g


def scale_by_adam_(g, m, v, t: int, beta_1: float, beta_2: float, eps: float,
                   vmax=None, inside: bool = False):
    """Adam (Kingma & Ba 2015, Algorithm 1) at step ``t >= 1``::

        m <- b1 m + (1-b1) g          v <- b2 v + (1-b2) g**2
        m_hat = m / (1 - b1**t)       v_hat = v / (1 - b2**t)
        d = m_hat / (sqrt(v_hat) + eps)          (inside=True: m_hat / sqrt(v_hat + eps))

    AMSGrad (Reddi et al. 2018, as torch does it, ``vmax`` given): ``vmax <- max(vmax, v)``
    and ``v_hat = vmax / (1 - b2**t)``.
    """
    ema_(m, g, beta_1)
    ema_sq_(v, g, beta_2)
    if vmax is not None:
        xp().maximum(vmax, v, out=vmax)
        second = vmax
    else:
        second = v
    # the bias corrections as multiplications by their reciprocals: one division per element
    # (m / denom) instead of three, the same maths to rounding (fused.py does the same)
    denom = second * (1.0 / bias_correction(beta_2, t))
    _root_(denom, eps, inside)
    xp().divide(m, denom, out=g)
    g *= 1.0 / bias_correction(beta_1, t)
    return g


# ------------------------------------------------------------------ applying a step
def apply_step_(params, d, lr: float):
    """Plain step: ``theta <- theta - lr * d``."""
    d *= lr
    params -= d
    return params


def apply_momentum_(params, d, lr: float, velocity, mu: float, nesterov: bool = False):
    """Momentum in velocity form, learning rate inside the velocity (Sutskever et al. 2013)::

        v <- mu v - lr d
        theta <- theta + v                      (classical)
        theta <- theta + mu v - lr d            (Nesterov, reformulated at the stored point)
    """
    d *= lr
    velocity *= mu
    velocity -= d
    if nesterov:
        params -= d
        d[...] = velocity
        d *= mu
        params += d
    else:
        params += velocity
    return params
