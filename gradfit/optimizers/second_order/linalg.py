"""The one dense solve of the Newton-type methods: a symmetric positive definite system by
LAPACK's Cholesky, factorised IN PLACE, refused when singular or ill-conditioned.

    x = spd_solve_(A, b)        # A (n, n) symmetric is destroyed; None: no solution

Why not ``scipy.linalg.solve(A, b, assume_a="pos")``: measured with SciPy 1.17 (its batched C
implementation), a solve of an n x n system raises the process's peak memory by 2 n^2
float64 even with ``overwrite_a=True``, which would put the memory wall of LM and Newton at
half the size the arithmetic of `gradfit.memory` promises.  Calling LAPACK's ``dpotrf`` on
the Fortran view of A (A is symmetric, so A^T is A and is F-contiguous when A is C-contiguous)
factorises it where it lies.  The test of conditioning is the one SciPy's solve applies
(``dpocon``'s reciprocal condition number below ``dlamch('E')`` gives a ``LinAlgWarning``
there; here, None), so a nearly singular system is rejected as MATLAB's ``\\`` warns of it.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

EPS = float(lapack.dlamch("E"))


def spd_solve_(A, b):
    """x with A x = b for a symmetric positive definite A (n, n), or None when A is not
    positive definite, is ill-conditioned (rcond < eps) or not finite.  A is overwritten by
    its Cholesky factor (no second n x n array); b is left unchanged."""
    F = A.T if A.flags.c_contiguous else A
    if not F.flags.f_contiguous:
        F = np.asfortranarray(A)        # a strided view: one copy cannot be avoided
    anorm = float(lapack.dlange("1", F))
    if not np.isfinite(anorm):
        return None
    c, info = lapack.dpotrf(F, lower=1, overwrite_a=1, clean=0)
    if info != 0:
        return None
    rcond, info = lapack.dpocon(c, anorm, uplo="L")
    if info != 0 or not rcond >= EPS:
        return None
    x, info = lapack.dpotrs(c, np.asarray(b, dtype=np.float64), lower=1)
    return x if info == 0 else None
