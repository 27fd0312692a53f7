"""Shared helpers for the engine tests: central finite differences and small models."""
from __future__ import annotations

import numpy as np

import gradfit
from gradfit import Dense, Input, Sequential


def numerical_grad(f, x, eps=1e-6):
    """Central differences of the scalar f() w.r.t. every element of the array `x`, in place.

    df/dx_k ~ (f(x + eps e_k) - f(x - eps e_k)) / (2 eps); x is restored after each probe.
    """
    g = np.zeros(x.size, dtype=np.float64)
    flat = x.reshape(-1)
    assert np.shares_memory(flat, x), "numerical_grad needs a contiguous array to probe in place"
    for k in range(x.size):
        old = flat[k]
        flat[k] = old + eps
        fp = f()
        flat[k] = old - eps
        fm = f()
        flat[k] = old
        g[k] = (fp - fm) / (2 * eps)
    return g.reshape(x.shape)


def rel_error(a, b):
    """||a - b|| / max(||a||, ||b||): the relative error of two gradients (0 when both are 0)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    den = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if den == 0 else float(np.linalg.norm(a - b) / den)


def mlp(sizes, activations, dtype="float32", seed=0, **dense_kw):
    """Sequential(Input(sizes[0]), Dense(sizes[i], activations[i-1]) ...), seeded and built."""
    gradfit.set_random_seed(seed)
    layers = [Input(shape=(sizes[0],))]
    layers += [Dense(n, activation=a, **dense_kw) for n, a in zip(sizes[1:], activations)]
    model = Sequential(layers, dtype=dtype)
    model.build()
    return model
