"""The in-place Cholesky solve of the Newton-type methods: its answers and refusals, and the
memory it does NOT take (the peak resident memory of the process, Linux's VmHWM, reset
through /proc/self/clear_refs)."""
from __future__ import annotations

import os

import numpy as np
import pytest

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


def _peak_rss_above_now(fn):
    """Bytes the process's peak resident memory rises by while fn runs."""
    def read(key):
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(key))
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")                                  # reset VmHWM to the current RSS
    base = read("VmRSS:")
    fn()
    return read("VmHWM:") - base


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK),
                    reason="peak-RSS reset is Linux's /proc/self/clear_refs")
def test_lm_step_holds_one_working_copy_not_three():
    """SciPy 1.17's solve(assume_a='pos') took 2 n^2 extra even with overwrite_a=True; the LM
    step here takes its one working copy (n^2) and little else."""
    n = 1500
    G = _spd(n)
    g = np.ones(n)
    extra = _peak_rss_above_now(lambda: damped_step(G, g, 1e-3))
    assert extra < 1.4 * n * n * 8, f"{extra / (n * n * 8):.2f} n^2 float64"
