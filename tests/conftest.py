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


# ----------------------------------------------------------------------------- MPI jobs
_MPI_VARS = ("PMI_RANK", "PMI_SIZE", "PMI_FD", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK",
             "PMIX_RANK", "MPI_LOCALNRANKS", "GRADFIT_MPI")


def clean_mpi_env(**extra):
    """This environment minus any MPI launcher variables, gradfit importable, 1 thread per rank,
    plus `extra`: the environment of a job the tests launch with mpiexec or as a plain child."""
    import os
    from pathlib import Path

    from gradfit.parallel import launch
    root = str(Path(__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if k not in _MPI_VARS}
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env = launch.thread_env(1, env)
    env.update({k: str(v) for k, v in extra.items()})
    return env
