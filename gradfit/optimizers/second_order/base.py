"""What every second-order method shares: the interface the training step drives, the
hyperparameter declarations (`gradfit.optimizers.hyper`, as every optimizer), state as plain
data, and the errors.

A method is driven one iteration at a time, so that training runs one iteration per "epoch"
(with callbacks, checkpoints and MPI in between)::

    method = LevenbergMarquardt(mu=1e-3)
    state = method.init(params, network="1-5-1")     # plain numbers / arrays; guards memory
    loss, info = method.iterate(objective, params, state)   # params updated in place

* ``objective``: the full-batch `Objective` (loss, gradient, J^T J, H v, ... as sums over the
  examples, one Allreduce per evaluation).
* ``params``: the flat float64 weights, updated IN PLACE (usually ``model.params`` itself).
  While an iteration runs the objective puts trial weights into the model; when it returns,
  ``params`` holds the new weights (or the old ones if no step was taken).  If anything
  raises, ``params`` is restored first: no error leaves the weights changed.
* ``state``: a dict whose ``"step"`` counts the iterations taken (as a first-order
  optimizer's counts its updates) and whose other values are Python numbers,
  None or float64 arrays, updated in place; saving it with the weights (`gradfit.saving`:
  arrays as arrays, the rest as JSON) and loading it back resumes the run bit for bit.
* returns ``(loss, info)``: the full-batch loss at the new weights and a dict with at least
  ``loss_before``, ``step`` (bool: the weights changed), ``evaluations`` and ``stop`` (None,
  or why the method cannot make progress any more: training should stop).

Hyperparameters are declared with `Hyper` (`declare` adds ``allow_mini_batch``, which every
method takes), so the constructor, its checks, ``get_config`` / ``from_config``, the flags of
``gradfit train`` and docs/optimizers.md come from one list, as for the first-order optimizers.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np

from ...checks import ArgumentError
from ...curvature import check_memory
from ..hyper import FLAG, NONNEGATIVE, Declared, Hyper, Number

#: 0 < c < 1: the constants of a Wolfe line search
WOLFE = Number(0.0, 1.0, low_open=True)

ALLOW_MINI_BATCH = Hyper(
    "allow_mini_batch", False, FLAG,
    "accept fit(batch_size=B) below the training set: each iteration then works on one batch "
    "of B rows (a different one each step; the state carries over)", keras=None,
    keyword_only=True)


def declare(*own: Hyper) -> tuple:
    """A second-order method's hyperparameters: its own (Keras has none of them), then
    ``allow_mini_batch``."""
    return (*(h.replace(keras=None) for h in own), ALLOW_MINI_BATCH)


def wolfe_constants(c1=1e-4, c2=0.9) -> tuple:
    """The ``c1`` and ``c2`` hyperparameters of a Wolfe line search (SciPy's defaults)."""
    return (Hyper("c1", c1, WOLFE, "sufficient-decrease constant of the line search"),
            Hyper("c2", c2, WOLFE, "curvature constant of the line search"))


def gtol(default=1e-5) -> Hyper:
    return Hyper("gtol", default, NONNEGATIVE,
                 "stop when the largest abs(g_i) <= gtol (SciPy's gtol)")


class SecondOrderError(ValueError):
    """Bad input for a second-order method, or a system it cannot solve; the weights were not
    changed."""


class SecondOrderMethod(Declared):
    """Base class (module docstring).  Subclasses declare ``name`` and ``hyperparameters``
    and define ``init`` (the state) and ``_iterate`` (one iteration, returning ``(loss,
    info)``); ``iterate`` adds the objective's evaluation counts to info."""

    name = ""
    hyperparameters: tuple = ()

    def _validate(self) -> None:
        c1, c2 = getattr(self, "c1", None), getattr(self, "c2", None)
        if c1 is not None and not c1 < c2:
            raise ArgumentError("c1", c1, f"below c2 = {c2} (0 < c1 < c2 < 1, the Wolfe "
                                "conditions)", owner=type(self).__name__)

    def check(self, objective) -> None:
        """Refuse an objective this method cannot work on (before any weights change)."""

    def check_memory(self, n: int, network=None, examples=None, outputs: int = 1,
                     available=None) -> dict:
        """The memory guard (`gradfit.curvature.check_memory`) for this method on n weights:
        raises InsufficientMemoryError before anything is allocated.  ``available``: bytes
        (default: the guard's own, $GRADFIT_MEMORY_AVAILABLE or MemAvailable)."""
        return check_memory(self.name, n, network=network, available=available,
                            examples=examples, outputs=outputs,
                            history=getattr(self, "history", 10))

    def init(self, params, segments=None, network=None) -> dict:
        """The state for ``params`` (``segments``: accepted for the first-order signature,
        unused); refuses, before allocating, a network whose matrices do not fit."""
        raise NotImplementedError

    def iterate(self, objective, params, state) -> tuple[float, dict]:
        """One iteration (module docstring): ``params`` and ``state`` updated in place."""
        loss, info = self._iterate(objective, params, state)
        info["evaluations"] = dict(objective.evaluations)
        return loss, info

    def _iterate(self, objective, params, state) -> tuple[float, dict]:
        raise NotImplementedError

    @staticmethod
    def count_step(state) -> None:
        state["step"] = int(state["step"]) + 1


def check_full_batch(method: str, batch_size, examples: int,
                     allow_mini_batch: bool = False) -> None:
    """Second-order methods need the full-batch objective: refuse a smaller batch unless asked.

    ``batch_size`` None means the whole set.  With ``allow_mini_batch`` a large fixed batch is
    accepted (the objective of one iteration is then that batch's, the same at every
    evaluation of the iteration)."""
    if batch_size is None or batch_size >= examples or allow_mini_batch:
        return
    raise ArgumentError(
        "batch_size", batch_size,
        f"the {examples:,} training examples (or None: the whole set) for '{method}', a "
        "full-batch method: its line search or damping rule compares losses of one function",
        "leave {batch_size} out (the whole set), or set {allow_mini_batch} for one iteration "
        "per batch")


@contextmanager
def restoring(params):
    """Yields a copy of ``params``; if the block raises, ``params`` gets it back first."""
    saved = np.array(params, dtype=np.float64, copy=True)
    try:
        yield saved
    except BaseException:
        params[...] = saved
        raise


def finite(value) -> bool:
    return value is not None and math.isfinite(value)


def converged(g, gtol, info) -> bool:
    """Whether max |g_i| <= gtol; if so, says it in ``info["stop"]``."""
    gmax = float(np.max(np.abs(g))) if g.size else 0.0
    if gmax <= gtol:
        info["stop"] = f"gradient converged (max |g_i| = {gmax:.3g} <= gtol {gtol:g})"
        return True
    return False
