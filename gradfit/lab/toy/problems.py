"""Two-dimensional test functions for watching optimizers move.

Every problem is a :class:`Problem`: ``value(p)`` and its analytic ``grad(p)``, the known
minima, a standard start point and a plot window.  ``p`` is an array whose last axis has
length 2 (``p[..., 0] = x``, ``p[..., 1] = y``), so the same functions evaluate one point
(shape ``(2,)``) or a whole contour grid (shape ``(H, W, 2)``); ``value`` returns shape
``p.shape[:-1]`` and ``grad`` returns shape ``p.shape``.  Everything is float64 numpy:
these are host-side toys, not model arrays.

=================  =========================================================  ==============
name               f(x, y)                                                    minima
=================  =========================================================  ==============
parabola           x^2 + y^2                                                  (0, 0)
rosenbrock         (a - x)^2 + b (y - x^2)^2,  a = 1, b = 100                 (1, 1)
beale              (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2   (3, 0.5)
himmelblau         (x^2 + y - 11)^2 + (x + y^2 - 7)^2                         four, f = 0
rastrigin          20 + sum_i [x_i^2 - 10 cos(2 pi x_i)]                      (0, 0), plus
                                                                              many local ones
saddle             x^2 - y^2                                                  none: unbounded
                                                                              below along y
long_valley        0.5 (x^2 + 100 y^2)          (axis-aligned, condition 100)  (0, 0)
long_valley_rotated  the same, rotated by 30 degrees                          (0, 0)
=================  =========================================================  ==============

The two valleys differ only by a rotation, which gradient descent and momentum do not
notice but the diagonal preconditioners (Adagrad, RMSprop, Adadelta, Adam) do: their
per-coordinate scaling removes an axis-aligned ill-conditioning and cannot remove a
rotated one.  Sources: Rosenbrock (1960); Beale (1958); Himmelblau (1972); Rastrigin
(1974); the list at https://en.wikipedia.org/wiki/Test_functions_for_optimization.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Problem:
    """A 2-D objective with what a runner and a plot need.

    ``minima``: the global minimisers as ``(x, y)`` tuples (empty for the saddle, which is
    unbounded below).  ``min_value``: ``f`` at them (``None`` when there are none).
    ``window``: ``((xmin, xmax), (ymin, ymax))`` for contour plots.  ``log_levels``: draw
    contours of ``f - min_value`` at log-spaced levels (for the steep, curved valleys).
    ``default_steps``: the step budget the comparison uses unless told otherwise.
    """

    name: str
    formula: str
    value: Callable[[np.ndarray], np.ndarray]
    grad: Callable[[np.ndarray], np.ndarray]
    minima: tuple = ()
    start: tuple = (0.0, 0.0)
    window: tuple = ((-2.0, 2.0), (-2.0, 2.0))
    log_levels: bool = True
    default_steps: int = 500
    notes: str = ""

    @property
    def min_value(self):
        """``f`` at the global minima, or ``None`` for a problem unbounded below."""
        if not self.minima:
            return None
        return float(self.value(np.asarray(self.minima[0], dtype=np.float64)))

    @property
    def bounded(self) -> bool:
        return bool(self.minima)

    def distance_to_minimum(self, p) -> float:
        """Euclidean distance from ``p`` (shape ``(2,)``) to the nearest global minimum.

        ``nan`` for a problem without minima.
        """
        if not self.minima:
            return float("nan")
        p = np.asarray(p, dtype=np.float64)
        return float(min(np.hypot(*(p - np.asarray(m))) for m in self.minima))


def _xy(p):
    p = np.asarray(p, dtype=np.float64)
    if p.shape[-1:] != (2,):
        raise ValueError(f"a toy problem takes points with last axis 2, got shape {p.shape}")
    return p[..., 0], p[..., 1]


def _stack(dx, dy):
    return np.stack([dx, dy], axis=-1)


# ------------------------------------------------------------------ Rosenbrock
_A, _B = 1.0, 100.0


def rosenbrock_value(p):
    """``(a - x)^2 + b (y - x^2)^2`` with a = 1, b = 100."""
    x, y = _xy(p)
    return (_A - x) ** 2 + _B * (y - x * x) ** 2


def rosenbrock_grad(p):
    """``(-2(a - x) - 4 b x (y - x^2),  2 b (y - x^2))``."""
    x, y = _xy(p)
    r = y - x * x
    return _stack(-2.0 * (_A - x) - 4.0 * _B * x * r, 2.0 * _B * r)


# ------------------------------------------------------------------ Beale
_BEALE_C = (1.5, 2.25, 2.625)


def beale_value(p):
    """``sum_{k=1..3} (c_k - x + x y^k)^2`` with c = (1.5, 2.25, 2.625)."""
    x, y = _xy(p)
    return sum((c - x + x * y**k) ** 2 for k, c in enumerate(_BEALE_C, start=1))


def beale_grad(p):
    """``df/dx = sum 2 t_k (y^k - 1)``,  ``df/dy = sum 2 t_k k x y^(k-1)``, t_k the residuals."""
    x, y = _xy(p)
    dx = np.zeros_like(x)
    dy = np.zeros_like(x)
    for k, c in enumerate(_BEALE_C, start=1):
        t = c - x + x * y**k
        dx = dx + 2.0 * t * (y**k - 1.0)
        dy = dy + 2.0 * t * k * x * y ** (k - 1)
    return _stack(dx, dy)


# ------------------------------------------------------------------ Himmelblau
def himmelblau_value(p):
    """``(x^2 + y - 11)^2 + (x + y^2 - 7)^2``."""
    x, y = _xy(p)
    return (x * x + y - 11.0) ** 2 + (x + y * y - 7.0) ** 2


def himmelblau_grad(p):
    """``(4x u + 2 w,  2 u + 4 y w)`` with ``u = x^2 + y - 11``, ``w = x + y^2 - 7``."""
    x, y = _xy(p)
    u = x * x + y - 11.0
    w = x + y * y - 7.0
    return _stack(4.0 * x * u + 2.0 * w, 2.0 * u + 4.0 * y * w)


_HIMMELBLAU_MINIMA = (
    (3.0, 2.0),
    (-2.805118086952745, 3.131312518250573),
    (-3.779310253377747, -3.283185991286170),
    (3.584428340330492, -1.848126526964404),
)


# ------------------------------------------------------------------ Rastrigin
_RA = 10.0


def rastrigin_value(p):
    """``2A + sum_i [x_i^2 - A cos(2 pi x_i)]`` with A = 10 (2-D)."""
    x, y = _xy(p)
    return 2 * _RA + sum(c * c - _RA * np.cos(2 * math.pi * c) for c in (x, y))


def rastrigin_grad(p):
    """``2 x_i + 2 pi A sin(2 pi x_i)`` per coordinate."""
    x, y = _xy(p)
    return _stack(*(2.0 * c + 2 * math.pi * _RA * np.sin(2 * math.pi * c) for c in (x, y)))


# ------------------------------------------------------------------ saddle
def saddle_value(p):
    """``x^2 - y^2``: a saddle at the origin, unbounded below along y."""
    x, y = _xy(p)
    return x * x - y * y


def saddle_grad(p):
    """``(2x, -2y)``."""
    x, y = _xy(p)
    return _stack(2.0 * x, -2.0 * y)


# ------------------------------------------------------------------ long valleys
_KAPPA = 100.0


def _valley(theta: float):
    """``f(p) = 0.5 p^T H p`` with ``H = R diag(1, kappa) R^T``, R the rotation by theta."""
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    hess = rot @ np.diag([1.0, _KAPPA]) @ rot.T

    def value(p):
        _xy(p)
        p = np.asarray(p, dtype=np.float64)
        return 0.5 * np.einsum("...i,ij,...j->...", p, hess, p)

    def grad(p):
        _xy(p)
        return np.asarray(p, dtype=np.float64) @ hess  # H is symmetric

    value.__doc__ = f"``0.5 p^T H p``, H eigenvalues (1, {_KAPPA:g}), rotated {math.degrees(theta):g} deg."
    grad.__doc__ = "``H p``."
    return value, grad, rot


_valley_value, _valley_grad, _ = _valley(0.0)
_rvalley_value, _rvalley_grad, _ROT30 = _valley(math.pi / 6)
_VALLEY_START = (-4.0, 0.5)


# ------------------------------------------------------------------ parabola
def parabola_value(p):
    """``x^2 + y^2``."""
    x, y = _xy(p)
    return x * x + y * y


def parabola_grad(p):
    """``(2x, 2y)``."""
    x, y = _xy(p)
    return _stack(2.0 * x, 2.0 * y)


PROBLEMS = {
    p.name: p
    for p in (
        Problem("parabola", "x^2 + y^2", parabola_value, parabola_grad, minima=((0.0, 0.0),),
                start=(-3.0, 2.0), window=((-4.0, 4.0), (-4.0, 4.0)), default_steps=200,
                notes="the round bowl: condition number 1, the easy case"),
        Problem("rosenbrock", "(1 - x)^2 + 100 (y - x^2)^2", rosenbrock_value, rosenbrock_grad,
                minima=((1.0, 1.0),), start=(-1.2, 1.0), window=((-2.0, 2.0), (-1.0, 3.0)),
                default_steps=2000,
                notes="a curved, flat-bottomed valley; the classic start (-1.2, 1)"),
        Problem("beale", "(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2",
                beale_value, beale_grad, minima=((3.0, 0.5),), start=(1.0, 1.5),
                window=((-4.5, 4.5), (-4.5, 4.5)), default_steps=2000,
                notes="flat plateaus and steep walls: gradient norms from 0 at the minimum to 2e5 "
                      "in the corners of the window"),
        Problem("himmelblau", "(x^2 + y - 11)^2 + (x + y^2 - 7)^2", himmelblau_value,
                himmelblau_grad, minima=_HIMMELBLAU_MINIMA, start=(0.0, 0.0),
                window=((-5.0, 5.0), (-5.0, 5.0)), default_steps=500,
                notes="four global minima, all f = 0: which one a method reaches is part of the "
                      "picture"),
        Problem("rastrigin", "20 + x^2 - 10 cos(2 pi x) + y^2 - 10 cos(2 pi y)", rastrigin_value,
                rastrigin_grad, minima=((0.0, 0.0),), start=(2.2, -3.3),
                window=((-5.12, 5.12), (-5.12, 5.12)), log_levels=False, default_steps=500,
                notes="a local minimum near every integer point: gradient methods stop in one"),
        Problem("saddle", "x^2 - y^2", saddle_value, saddle_grad, minima=(),
                start=(-1.0, 1e-3), window=((-1.5, 1.5), (-1.5, 1.5)), log_levels=False,
                default_steps=40,
                notes="no minimum: unbounded below along y. The start sits 1e-3 off the ridge, "
                      "so the question is how fast a method escapes the saddle point"),
        Problem("long_valley", "0.5 (x^2 + 100 y^2)", _valley_value, _valley_grad,
                minima=((0.0, 0.0),), start=_VALLEY_START, window=((-5.0, 5.0), (-2.0, 2.0)),
                default_steps=300,
                notes="condition number 100, valley along the x axis"),
        Problem("long_valley_rotated", "0.5 p^T R diag(1, 100) R^T p, R = rotation by 30 deg",
                _rvalley_value, _rvalley_grad, minima=((0.0, 0.0),),
                start=tuple(float(v) for v in _ROT30 @ np.array(_VALLEY_START)),
                window=((-5.0, 5.0), (-3.5, 3.5)), default_steps=300,
                notes="the long valley rotated by 30 degrees, so its axes are not the "
                      "coordinate axes"),
    )
}


def get_problem(name) -> Problem:
    """The problem called ``name`` (a :class:`Problem` is returned unchanged)."""
    if isinstance(name, Problem):
        return name
    if not isinstance(name, str) or name not in PROBLEMS:
        raise ValueError(f"unknown toy problem {name!r}: choose one of {', '.join(PROBLEMS)}")
    return PROBLEMS[name]


def problem_names() -> list:
    """Names of the registered problems."""
    return list(PROBLEMS)
