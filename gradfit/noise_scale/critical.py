"""The critical batch size from a batch-size sweep: fit S_min, E_min; B_crit = E_min / S_min.

Source: McCandlish et al. (2018), Sec. 2.3 and Sec. 4.  Training to the same target loss at
batch size B takes S optimisation steps and E = B S examples; across batch sizes they trade off as

    (S / S_min - 1) (E / E_min - 1) = 1,

S_min the fewest steps (B -> infinity) and E_min the fewest examples (B -> 0).  Expanding,
SE = S E_min + E S_min, i.e. with E = B S

    1 = S_min / S + E_min / E            and            S(B) = S_min + E_min / B
                                                        E(B) = E_min + S_min B,

so S = S_min (1 + B_crit / B) and E = E_min (1 + B / B_crit) with

    B_crit = E_min / S_min,

the batch size where both cost twice their minimum (S = 2 S_min, E = 2 E_min).  The paper
predicts B_crit ~ B_noise ~ B_simple.

Fit.  ``method="linear"``: least squares on 1 = S_min/S + E_min/E, linear in the unknowns
(closed form; each residual is a relative error).  ``method="log"`` (default): starting there,
scipy.optimize.least_squares on r_k = log S_k - log(S_min + E_min / B_k), B_k = E_k / S_k,
over (log S_min, log E_min) so both stay positive; ``robust=True`` uses the soft-L1 loss (about
quadratic below ``f_scale``=0.1, i.e. 10 %, linear above) so one run stopped by a noisy loss
curve does not drag the fit.  scipy is present wherever scikit-learn is.
"""
from __future__ import annotations

import numpy as np


def _as_positive_1d(name, v):
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of numbers, got {v!r}") from None
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per run), got shape {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"{name} must be finite and > 0 (runs that reached the target), got {a.tolist()}")
    return a


def _linear_fit(s, e):
    a = np.stack([1.0 / s, 1.0 / e], axis=1)
    col = np.linalg.norm(a, axis=0)
    sol, *_ = np.linalg.lstsq(a / col, np.ones_like(s), rcond=None)
    return sol / col


def fit_steps_examples(S, E, method: str = "log", robust: bool = True):
    """Fit (S/S_min - 1)(E/E_min - 1) = 1 to runs with steps S[k] and examples E[k] = B_k S[k].

    Returns ``(S_min, E_min)`` as floats; ``b_crit(S_min, E_min)`` gives B_crit.
    At least 2 runs with different batch sizes; a sweep spanning B_crit (2^k from well below
    to well above) pins both down, one only above B_crit fixes S_min alone.
    """
    s = _as_positive_1d("S", S)
    e = _as_positive_1d("E", E)
    if s.shape != e.shape:
        raise ValueError(f"S and E must have the same length, got {s.size} and {e.size}")
    b = e / s
    if s.size < 2 or np.ptp(np.log(b)) < 1e-12:
        raise ValueError(
            f"need at least 2 runs with different batch sizes E/S, got batch sizes {b.tolist()}"
        )
    if method not in ("log", "linear"):
        raise ValueError(f"method must be 'log' or 'linear', got {method!r}")
    s_min, e_min = _linear_fit(s, e)
    if method == "linear":
        if s_min <= 0 or e_min <= 0:
            raise ValueError(
                f"the linear fit gave S_min={s_min:.4g}, E_min={e_min:.4g} (must be > 0): the runs "
                "do not follow the relation; use method='log' or a wider batch-size sweep"
            )
        return float(s_min), float(e_min)

    from scipy.optimize import least_squares

    if s_min <= 0 or e_min <= 0:  # a poor start from noisy data; any positive one will do
        s_min, e_min = 0.5 * s.min(), 0.5 * e.min()
    log_s = np.log(s)

    def residuals(p):
        return log_s - np.log(np.exp(p[0]) + np.exp(p[1]) / b)

    res = least_squares(
        residuals, np.log([s_min, e_min]),
        loss="soft_l1" if robust else "linear", f_scale=0.1, xtol=1e-14, ftol=1e-14, gtol=1e-14,
    )
    return float(np.exp(res.x[0])), float(np.exp(res.x[1]))


def b_crit(S_min, E_min) -> float:
    """The critical batch size E_min / S_min."""
    if not (S_min > 0 and E_min > 0):
        raise ValueError(f"S_min and E_min must be > 0, got {S_min!r}, {E_min!r}")
    return float(E_min) / float(S_min)


def frontier(S_min, E_min, n: int = 200, batch_sizes=None):
    """Points ``(S, E)`` of the fitted curve, for plotting.

    At ``batch_sizes`` if given, else at n batch sizes log-spaced over B_crit/100 .. 100 B_crit.
    """
    bc = b_crit(S_min, E_min)
    if batch_sizes is None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
            raise ValueError(f"n must be an integer >= 2, got {n!r}")
        batch_sizes = np.geomspace(bc / 100.0, bc * 100.0, int(n))
    bs = _as_positive_1d("batch_sizes", batch_sizes)
    return S_min * (1.0 + bc / bs), E_min * (1.0 + bs / bc)
