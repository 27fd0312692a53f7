"""What every second-order method shares: the interface the training loop drives, the
hyperparameter declarations, state as plain data, and the errors.

A method is driven one iteration at a time, so that a training loop can run one iteration per
"epoch" (with callbacks, checkpoints and MPI in between)::

    method = LevenbergMarquardt(mu=1e-3)
    state = method.init(params, network="1-5-1")     # plain numbers / arrays; guards memory
    loss, info = method.iterate(objective, params, state)   # params updated in place

* ``objective``: the full-batch `Objective` (loss, gradient, J^T J, H v, ... as sums over the
  examples, one Allreduce per evaluation).
* ``params``: the flat float64 weights, updated IN PLACE (usually ``model.params`` itself).
  While an iteration runs the objective puts trial weights into the model; when it returns,
  ``params`` holds the new weights (or the old ones if no step was taken).  If anything
  raises, ``params`` is restored first: no error leaves the weights changed.
* ``state``: a dict of Python numbers, None and float64 arrays, updated in place; saving it
  with the weights and loading it back resumes the run bit for bit.
* returns ``(loss, info)``: the full-batch loss at the new weights and a dict with at least
  ``loss_before``, ``step`` (bool: the weights changed), ``evaluations`` and ``stop`` (None,
  or why the method cannot make progress any more: the loop should stop training).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ...checks import check_choice, check_int, check_number


class SecondOrderError(ValueError):
    """Bad input for a second-order method, or a system it cannot solve; the weights were not
    changed."""


@dataclass(frozen=True)
class Hyper:
    """One hyperparameter: name, default, allowed values (bounds of a number, or choices,
    or ``integer=True`` for a count), and what it means."""
    name: str
    default: object
    doc: str
    minimum: float | None = None
    above: float | None = None
    below: float | None = None
    choices: tuple | None = None
    integer: bool = False
    optional: bool = False       # None allowed (meaning: derived, see doc)

    def check(self, value, owner):
        if value is None and self.optional:
            return None
        if self.choices is not None:
            return check_choice(self.name, value, self.choices, owner=owner)
        if self.integer:
            return check_int(self.name, value, minimum=self.minimum, owner=owner)
        return check_number(self.name, value, minimum=self.minimum, above=self.above,
                            below=self.below, owner=owner)


class SecondOrderMethod:
    """Base class: hyperparameters from ``hyperparameters`` (validated at construction), the
    config, and ``iterate``.  Subclasses define ``init`` and ``_iterate`` (one iteration,
    returning ``(loss, info)``); ``iterate`` adds the objective's evaluation counts to info."""

    name = ""
    hyperparameters: tuple[Hyper, ...] = ()

    def __init__(self, **kwargs):
        known = {h.name: h for h in self.hyperparameters}
        unknown = sorted(set(kwargs) - set(known))
        if unknown:
            raise SecondOrderError(
                f"{type(self).__name__} got unknown argument(s) {', '.join(unknown)}; "
                f"valid: {', '.join(known) or 'none'}")
        for h in self.hyperparameters:
            setattr(self, h.name, h.check(kwargs.get(h.name, h.default), type(self).__name__))

    def get_config(self) -> dict:
        return {"name": self.name, **{h.name: getattr(self, h.name) for h in self.hyperparameters}}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**{k: v for k, v in config.items() if k != "name"})

    def check(self, objective) -> None:
        """Refuse an objective this method cannot work on (before any weights change)."""

    def init(self, params, network: str | None = None) -> dict:
        raise NotImplementedError

    def iterate(self, objective, params, state) -> tuple[float, dict]:
        """One iteration (module docstring): ``params`` and ``state`` updated in place."""
        loss, info = self._iterate(objective, params, state)
        info["evaluations"] = dict(objective.evaluations)
        return loss, info

    def _iterate(self, objective, params, state) -> tuple[float, dict]:
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{h.name}={getattr(self, h.name)!r}" for h in self.hyperparameters)
        return f"{type(self).__name__}({args})"


def check_full_batch(method: str, batch_size, examples: int, allow_mini_batch: bool = False) -> None:
    """Second-order methods need the full-batch objective: refuse a smaller batch unless asked.

    ``batch_size`` None means the whole set.  With ``allow_mini_batch`` a large fixed batch is
    accepted (the objective is then that batch's, the same at every evaluation)."""
    if batch_size is None or batch_size >= examples or allow_mini_batch:
        return
    raise SecondOrderError(
        f"'{method}' is a full-batch method: batch_size={batch_size} is smaller than the "
        f"{examples:,} training examples, and its line search / damping rule compares losses "
        f"of the same function; pass batch_size=None (or {examples}), or allow_mini_batch=True "
        "to use one large fixed batch")


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
