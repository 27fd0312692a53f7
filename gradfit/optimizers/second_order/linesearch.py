"""SciPy's line searches, driven by gradfit's one-iteration-at-a-time methods.

Why not ``scipy.optimize.minimize`` itself: it cannot stop after one iteration and continue
later from saved state.  Its loops keep their state in local variables (BFGS's previous loss,
which sets the first trial step of the next line search; L-BFGS-B's history lives in its
compiled workspace), so ``maxiter=1`` restarts would change the method (a restarted L-BFGS-B
forgets its history every iteration).  gradfit's loop takes one iteration per epoch and
checkpoints between them, so the few lines of each outer loop are written in gradfit (bfgs.py,
lbfgs.py, newton_cg.py), rule for rule as SciPy's, and the hard part, the line search, is
SciPy's own:

* `wolfe_search`: SciPy's ``_line_search_wolfe12`` (MINPACK's dcsrch through
  ``line_search_wolfe1``, falling back to ``line_search_wolfe2``), exactly as ``minimize``'s
  BFGS and Newton-CG call it.
* `minpack_search`: MINPACK's dcsrch (SciPy's ``DCSRCH``) with L-BFGS-B's settings (ftol 1e-3,
  gtol 0.9, xtol 0.1, at most 20 evaluations; a "WARNING" exit is accepted as L-BFGS-B does).

Both are private SciPy functions (present since SciPy 1.12); the tests compare every method
with ``scipy.optimize.minimize`` iteration by iteration, so a change in SciPy shows there.
"""
from __future__ import annotations

import numpy as np

try:
    from scipy.optimize._dcsrch import DCSRCH
    from scipy.optimize._optimize import _line_search_wolfe12, _LineSearchError
except ImportError as exc:  # pragma: no cover - depends on the installed SciPy
    raise ImportError("gradfit's second-order methods use SciPy's line searches "
                      "(scipy.optimize._dcsrch, SciPy >= 1.12): pip install -U scipy") from exc


class LineSearchFailed(Exception):
    """No step satisfying the line search's conditions was found."""


def wolfe_search(objective, x, p, f, g, f_prev, c1=1e-4, c2=0.9, **kwargs):
    """Strong-Wolfe line search along p from x, as SciPy's BFGS / Newton-CG.

    f, g: loss and gradient at x; f_prev: the loss before the previous step (None: start from
    step 1).  Returns ``(alpha, f_new, g_new)``; raises `LineSearchFailed`."""
    try:
        alpha, _, _, f_new, _, g_new = _line_search_wolfe12(
            objective.loss_only, objective.grad_only, x, p, g, f, f_prev, c1=c1, c2=c2, **kwargs)
    except _LineSearchError:
        raise LineSearchFailed(f"no step along the search direction satisfies the Wolfe "
                               f"conditions (c1={c1}, c2={c2})") from None
    if g_new is None:
        g_new = objective.grad_only(x + alpha * p)
    return alpha, f_new, g_new


def minpack_search(objective, x, d, f, g, stp, ftol=1e-3, gtol=0.9, xtol=0.1, stpmax=1e10,
                   max_evaluations=20):
    """MINPACK dcsrch along d from x, as L-BFGS-B's ``lnsrlb`` drives it.

    Starts at step ``stp``; accepts a converged step or a warning exit (L-BFGS-B takes both as
    its new iterate); fails after ``max_evaluations`` loss + gradient evaluations or on an
    error.  Returns ``(stp, x_new, f_new, g_new)``; raises `LineSearchFailed`."""
    gd = float(np.dot(g, d))
    if not gd < 0:
        raise LineSearchFailed(f"the direction is not a descent direction (g.d = {gd:.3g})")
    search = DCSRCH(None, None, ftol, gtol, xtol, 0.0, stpmax)
    task, f_s, gd_s = b"START", f, gd
    evaluations = 0
    x_new, g_new = x, g
    while True:
        stp, f_s, gd_s, task = search._iterate(stp, f_s, gd_s, task)
        if task[:2] != b"FG":
            break
        if evaluations >= max_evaluations:
            raise LineSearchFailed(f"no acceptable step within {max_evaluations} evaluations")
        x_new = x + stp * d
        f_s, g_new = objective.loss_and_grad(x_new)
        gd_s = float(np.dot(g_new, d))
        evaluations += 1
    if task[:5] == b"ERROR" or evaluations == 0 or not np.isfinite(f_s):
        raise LineSearchFailed(f"MINPACK's line search stopped: {task.decode(errors='replace')}")
    return stp, x_new, f_s, g_new
