"""Weight initializers, with Keras's names and formulas.

fan_in / fan_out of a Dense kernel of shape (n_in, n_out) are n_in and n_out. Values are drawn
in float64 from gradfit's generator (`gradfit.utils.rng`) and cast by the caller, so a seed gives
the same weights on every machine.

| name             | distribution                                   |
|------------------|------------------------------------------------|
| glorot_uniform   | U(-l, l), l = sqrt(6 / (fan_in + fan_out))     |
| glorot_normal    | truncated N(0, 2 / (fan_in + fan_out))         |
| he_uniform       | U(-l, l), l = sqrt(6 / fan_in)                 |
| he_normal        | truncated N(0, 2 / fan_in)                     |
| lecun_uniform    | U(-l, l), l = sqrt(3 / fan_in)                 |
| lecun_normal     | truncated N(0, 1 / fan_in)                     |
| random_normal    | N(0, 0.05^2)                                   |
| random_uniform   | U(-0.05, 0.05)                                 |
| zeros, ones      | constants                                      |

Truncated normals redraw values beyond two standard deviations and scale the standard
deviation by 1/0.87962566103423978, as Keras's VarianceScaling does.
"""
from __future__ import annotations

import numpy as np

from .checks import check_choice

_TRUNC = 0.87962566103423978


def _truncated_normal(rng, std, shape):
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2.0
    return out * (std / _TRUNC)


def _fans(shape):
    if len(shape) == 1:
        return shape[0], shape[0]
    return shape[0], shape[1]


def _scaling(scale, mode, distribution):
    def init(shape, rng):
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        var = scale / max(1.0, n)
        if distribution == "uniform":
            lim = np.sqrt(3.0 * var)
            return rng.uniform(-lim, lim, shape)
        return _truncated_normal(rng, np.sqrt(var), shape)
    return init


INITIALIZERS = {
    "glorot_uniform": _scaling(1.0, "fan_avg", "uniform"),
    "glorot_normal": _scaling(1.0, "fan_avg", "normal"),
    "he_uniform": _scaling(2.0, "fan_in", "uniform"),
    "he_normal": _scaling(2.0, "fan_in", "normal"),
    "lecun_uniform": _scaling(1.0, "fan_in", "uniform"),
    "lecun_normal": _scaling(1.0, "fan_in", "normal"),
    "random_normal": lambda shape, rng: rng.normal(0.0, 0.05, shape),
    "random_uniform": lambda shape, rng: rng.uniform(-0.05, 0.05, shape),
    "zeros": lambda shape, rng: np.zeros(shape),
    "ones": lambda shape, rng: np.ones(shape),
}


def get(name: str):
    """The initializer function `(shape, rng) -> float64 array` called `name`."""
    if callable(name):
        return name
    check_choice("initializer", name, INITIALIZERS)
    return INITIALIZERS[name]
