"""The in-place Cholesky solve of the Newton-type methods: its answers and refusals, and the
memory it does NOT take (`gradfit.memory.measure_peak`: the process's peak resident memory)."""
from __future__ import annotations

import os

import numpy as np
import pytest

from gradfit.memory import measure_peak
from gradfit.optimizers.second_order.lm import damped_step
from gradfit.optimizers.second_order.linalg import spd_solve_


def _spd(n, seed=0, cond=10.0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return (q * np.geomspace(1.0, cond, n)) @ q.T


def test_solves_as_numpy_and_refuses_what_scipy_warns_of():
    A = _spd(50)
    b = np.arange(50.0)
    expected = np.linalg.solve(A, b)
    x = spd_solve_(A.copy(), b)
    np.testing.assert_allclose(x, expected, rtol=1e-12, atol=1e-12)
    x_f = spd_solve_(np.asfortranarray(A), b)          # Fortran order: factorised there too
    np.testing.assert_allclose(x_f, expected, rtol=1e-12, atol=1e-12)
    assert spd_solve_(-A, b) is None                          # negative definite
    assert spd_solve_(np.zeros((3, 3)), np.ones(3)) is None   # singular
    assert spd_solve_(_spd(20, cond=1e17), np.ones(20)) is None   # rcond below eps
    bad = A.copy()
    bad[3, 3] = np.nan
    assert spd_solve_(bad, b) is None


def test_factorises_in_place():
    A = _spd(40)
    L = np.linalg.cholesky(A)
    spd_solve_(A, np.ones(40))
    # the lower triangle of A's Fortran view, i.e. A's upper triangle in C order, holds L^T
    np.testing.assert_allclose(np.triu(A), L.T, rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK),
                    reason="peak-RSS reset is Linux's /proc/self/clear_refs")
def test_lm_step_holds_one_working_copy_not_three():
    """SciPy 1.17's solve(assume_a='pos') took 2 n^2 extra even with overwrite_a=True; the LM
    step here takes its one working copy (n^2) and little else."""
    n = 1500
    G = _spd(n)
    g = np.ones(n)
    extra, how = measure_peak(lambda: damped_step(G, g, 1e-3))
    assert how == "peak RSS"
    assert extra < 1.4 * n * n * 8, f"{extra / (n * n * 8):.2f} n^2 float64"


def test_gram_accumulates_in_place_without_an_n_by_n_temporary():
    from gradfit.curvature.jacobian import add_gram_
    rng = np.random.default_rng(1)
    n = 1200
    G = rng.normal(size=(n, n))
    G = G + G.T
    J = rng.normal(size=(7, n))
    expected = G + J.T @ J
    address = G.__array_interface__["data"][0]
    extra, _ = measure_peak(lambda: add_gram_(G, J))
    np.testing.assert_allclose(G, expected, rtol=1e-12, atol=1e-12)
    assert G.__array_interface__["data"][0] == address
    if os.access("/proc/self/clear_refs", os.W_OK):
        assert extra < 0.3 * n * n * 8, f"{extra / (n * n * 8):.2f} n^2 float64"
    G32 = np.zeros((3, 3), dtype=np.float32)          # the plain path
    np.testing.assert_allclose(add_gram_(G32, np.ones((2, 3), dtype=np.float32)), 2.0)
