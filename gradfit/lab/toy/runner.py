"""Drive optimizers over a 2-D toy problem, record the path, tune the learning rate.

``run`` uses exactly the code that trains networks: ``opt.init(params)`` then
``opt.update(params, grads, state)`` on a flat float64 array of 2 values, one gradient
``problem.grad(params)`` per step (full-batch, no noise).  The lecture's lookahead Nesterov
(``v <- mu v - lr g(theta + mu v); theta <- theta + v``) needs the gradient at a point of
its own choosing, so it runs in its original form through ``gradfit.optimizers.forms`` under the
name ``"nesterov_lookahead"``; its trajectory records ``theta_t`` (the library's
``"nesterov"`` records ``theta_t + mu v_t``, the same iteration written at the look-ahead
point).

Newton, Levenberg-Marquardt and BFGS (and the other ``gradfit.optimizers.second_order``
methods) run through their own ``init(params)`` / ``iterate(objective, params, state)``, the
code that trains networks, on a `curvature.ToyObjective` (the problem's exact Hessian and
residual Jacobian).  They have no learning rate, so they are not tuned; one iteration is one
step of the path (however many loss and gradient evaluations its line search or damping rule
took: ``Trajectory.evaluations`` counts them), and a run ends early when the method stops
(converged, or no further progress possible).

Learning-rate tuning (``tune_learning_rate``) is a log-spaced grid search, each grid value
run for the full step budget from the same start:

* ``criterion="final_loss"`` (default for problems with a minimum): the gap ``f(p_N) - f*``;
  ``"distance"``: ``||p_N - nearest minimum||``.  Both are floored at ``tol`` (1e-10) and
  ties broken by the first step at which the floor was reached, so among the runs that
  converge the fastest wins.
* ``criterion="mean_loss"`` (default for the saddle, which has no minimum): the mean over
  the trajectory of ``f`` clipped below at the lowest value on the plot window; it rewards
  leaving the saddle early, where a final loss would only say how far a run has shot off.
* **divergence**: a run whose points or losses are not finite, or (for a problem with a
  minimum) which leaves the box ``1000 x`` the plot window around its centre, scores
  ``inf`` and cannot be chosen.  If every grid value diverges, ``RuntimeError``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ... import optimizers
from ...optimizers import forms, second_order
from .curvature import ToyObjective
from .problems import Problem, get_problem

DEFAULT_GRID = np.logspace(-5, 0, 16)
CRITERIA = ("final_loss", "distance", "mean_loss")
DEFAULT_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam",
                      "newton", "lm", "bfgs")
LOOKAHEAD = "nesterov_lookahead"
_TOL = 1e-10


@dataclass
class Trajectory:
    """The path of one optimizer: ``points`` ``(N+1, 2)`` (row 0 the start), ``losses`` ``(N+1,)``.

    ``learning_rate``: the lr used; ``tuning``: ``[(lr, score), ...]`` when it was tuned
    (``inf`` = diverged); ``velocities`` ``(N+1, 2)`` for the lookahead Nesterov form;
    ``evaluations``: for a second-order method, the objective's counts by kind (``{"loss",
    "gradient", "hessian", ...}``); ``stop``: why it ended before the step budget, if it did.
    """

    name: str
    problem: Problem
    points: np.ndarray
    losses: np.ndarray
    learning_rate: float | None = None
    tuning: list = field(default_factory=list)
    velocities: np.ndarray | None = None
    evaluations: dict | None = None
    stop: str | None = None

    @property
    def steps(self) -> int:
        return len(self.points) - 1

    @property
    def final_point(self) -> np.ndarray:
        return self.points[-1]

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1])

    def distance(self) -> float:
        """Distance of the final point to the nearest global minimum (``nan`` if none)."""
        return self.problem.distance_to_minimum(self.points[-1])


class LookaheadNesterov:
    """The lecture's Nesterov momentum in its original lookahead form (``optimizers.forms``).

    Not an ``init``/``update`` optimizer: it needs ``grad_fn`` itself, which ``run`` gives.
    """

    def __init__(self, learning_rate=0.01, momentum=0.9):
        for key, val, ok in (("learning_rate", learning_rate, learning_rate >= 0),
                             ("momentum", momentum, 0 <= momentum < 1)):
            if not (isinstance(val, (int, float)) and math.isfinite(val) and ok):
                raise ValueError(f"Invalid {key} value: {val!r} for {LOOKAHEAD}")
        self.learning_rate = float(learning_rate)
        self.momentum = float(momentum)

    def __repr__(self):
        return f"LookaheadNesterov(learning_rate={self.learning_rate!r}, momentum={self.momentum!r})"


def is_second_order(name) -> bool:
    """Whether ``name`` is a second-order method (no learning rate; not tuned)."""
    return isinstance(name, str) and name in second_order.METHODS


def optimizer_by_name(name: str, learning_rate=None):
    """A fresh optimizer called ``name`` (a ``gradfit.optimizers`` name, ``"nesterov_lookahead"``
    or a second-order method: ``"newton"``, ``"lm"``, ``"bfgs"``, ...).

    ``learning_rate=None`` keeps the optimizer's own default (a second-order method has none
    and refuses one).  On 2 parameters the update takes the numpy path by itself (the fused
    kernels start at 128k parameters).
    """
    if is_second_order(name):
        if learning_rate is not None:
            raise ValueError(f"{name!r} is a second-order method: it has no learning rate, "
                             f"got learning_rate={learning_rate!r}")
        return second_order.get(name)
    if name == LOOKAHEAD:
        opt = LookaheadNesterov()
    else:
        if not isinstance(name, str) or name.lower() not in optimizers.NAMES:
            raise ValueError(f"unknown optimizer {name!r}: valid names are "
                             f"{', '.join(list(optimizers.NAMES) + [LOOKAHEAD, *second_order.METHODS])}")
        opt = optimizers.get(name)
    if learning_rate is not None:
        opt.learning_rate = float(learning_rate)
    return opt


def _start(problem: Problem, start):
    p = np.array(problem.start if start is None else start, dtype=np.float64)
    if p.shape != (2,) or not np.all(np.isfinite(p)):
        raise ValueError(f"start must be 2 finite numbers (x, y), got {start!r}")
    return p


def run(optimizer, problem, steps: int, start=None, name: str | None = None) -> Trajectory:
    """Run ``optimizer`` for ``steps`` full-gradient steps on ``problem`` from ``start``.

    ``optimizer``: a gradfit optimizer instance, a name (``optimizer_by_name``), or a
    :class:`LookaheadNesterov`.  ``start`` defaults to ``problem.start``.  All arithmetic is
    float64; overflow is allowed to run to inf/nan silently (tuning flags it as divergence).
    """
    problem = get_problem(problem)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if isinstance(optimizer, str):
        name = name or optimizer
        optimizer = optimizer_by_name(optimizer)
    params = _start(problem, start)
    velocities = evaluations = stop = None
    with np.errstate(all="ignore"):
        if isinstance(optimizer, second_order.SecondOrderMethod):
            points, evaluations, stop = _iterate_second_order(optimizer, problem, params, steps)
        elif isinstance(optimizer, LookaheadNesterov):
            points, velocities = forms.nesterov_lookahead(
                problem.grad, params, optimizer.learning_rate, optimizer.momentum, int(steps))
        else:
            if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
                raise TypeError(f"optimizer must be a gradfit optimizer, a name or "
                                f"LookaheadNesterov, got {optimizer!r}")
            state = optimizer.init(params)
            points = np.empty((steps + 1, 2))
            points[0] = params
            for k in range(1, steps + 1):
                optimizer.update(params, problem.grad(params), state)  # in place on params
                points[k] = params
        losses = problem.value(points)
    lr = getattr(optimizer, "learning_rate", None)
    return Trajectory(name=name or getattr(optimizer, "name", "") or type(optimizer).__name__.lower(),
                      problem=problem, points=points, losses=losses,
                      learning_rate=float(lr) if isinstance(lr, (int, float)) else None,
                      velocities=velocities, evaluations=evaluations, stop=stop)


def _iterate_second_order(method, problem, params, steps):
    """Up to ``steps`` iterations of a second-order ``method`` (its own init / iterate on a
    `ToyObjective`); returns ``(points (k+1, 2), evaluations, stop)``.  A problem the method
    cannot work on (LM on the saddle) raises SecondOrderError before the first step; one it
    raises later ends the path there, with the message as ``stop``."""
    objective = ToyObjective(problem)
    method.check(objective)
    state = method.init(params, network=objective.describe())
    points, stop = [params.copy()], None
    for _ in range(steps):
        try:
            _, info = method.iterate(objective, params, state)
        except second_order.SecondOrderError as exc:   # e.g. a singular Gauss-Newton system
            if len(points) == 1:
                raise
            stop = str(exc)
            break
        if info["step"]:
            points.append(params.copy())
        if info["stop"]:
            stop = info["stop"]
            break
    return np.array(points), dict(objective.evaluations), stop


# ------------------------------------------------------------------ tuning
def _window_floor(problem: Problem) -> float:
    (x0, x1), (y0, y1) = problem.window
    gx, gy = np.meshgrid(np.linspace(x0, x1, 101), np.linspace(y0, y1, 101))
    return float(problem.value(np.stack([gx, gy], axis=-1)).min())


def diverged(traj: Trajectory, problem: Problem) -> bool:
    """Not finite, or (problems with a minimum) outside 1000x the plot window."""
    if not (np.all(np.isfinite(traj.points)) and np.all(np.isfinite(traj.losses))):
        return True
    if problem.bounded:
        (x0, x1), (y0, y1) = problem.window
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        half = 1000 * np.array([(x1 - x0) / 2, (y1 - y0) / 2])
        return bool(np.any(np.abs(traj.points - centre) > half))
    return False


def score(traj: Trajectory, problem: Problem, criterion: str):
    """``(value, tie_break)`` to minimise; ``(inf, inf)`` for a diverged run.

    ``tie_break``: the first step at which the value reached its floor (``tol``, or for
    ``mean_loss`` the window's lowest value, i.e. the step the path left the window).
    """
    if diverged(traj, problem):
        return (math.inf, math.inf)
    if criterion == "mean_loss":
        floor = _window_floor(problem)
        out = np.flatnonzero(traj.losses <= floor)
        return (float(np.mean(np.maximum(traj.losses, floor))),
                float(out[0]) if out.size else math.inf)
    if criterion == "final_loss":
        gaps = traj.losses - problem.min_value
    else:
        gaps = np.array([problem.distance_to_minimum(p) for p in traj.points])
    gaps = np.maximum(gaps, _TOL)
    reached = np.flatnonzero(gaps <= _TOL)
    return (float(gaps[-1]), float(reached[0]) if reached.size else math.inf)


def _criterion(problem: Problem, criterion):
    if criterion is None:
        return "final_loss" if problem.bounded else "mean_loss"
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}: choose one of {', '.join(CRITERIA)}")
    if criterion != "mean_loss" and not problem.bounded:
        raise ValueError(f"criterion {criterion!r} needs a minimum, and {problem.name!r} has "
                         f"none: use 'mean_loss'")
    return criterion


def tune_learning_rate(make_optimizer, problem, steps: int, grid=DEFAULT_GRID, criterion=None,
                       start=None, name: str | None = None) -> Trajectory:
    """Best learning rate on a log-spaced ``grid``; returns the best run's :class:`Trajectory`.

    ``make_optimizer(lr)`` builds a fresh optimizer (or a name, see ``optimizer_by_name``).
    ``criterion``: ``"final_loss"`` (default), ``"distance"`` or ``"mean_loss"`` (default and
    only choice on a problem without minimum); see the module docstring.  The result's
    ``tuning`` lists ``(lr, score)`` for the whole grid, ``inf`` marking divergence.
    """
    problem = get_problem(problem)
    criterion = _criterion(problem, criterion)
    if isinstance(make_optimizer, str):
        opt_name = make_optimizer
        def factory(lr):
            return optimizer_by_name(opt_name, lr)
        name = name or opt_name
    elif callable(make_optimizer):
        factory = make_optimizer
    else:
        raise TypeError(f"make_optimizer must be a name or a callable lr -> optimizer, "
                        f"got {make_optimizer!r}")
    grid = [float(lr) for lr in np.atleast_1d(np.asarray(grid, dtype=np.float64))]
    if not grid or any(not (lr > 0 and math.isfinite(lr)) for lr in grid):
        raise ValueError(f"grid must hold finite learning rates > 0, got {grid!r}")
    best, best_score, table = None, None, []
    for lr in grid:
        traj = run(factory(lr), problem, steps, start=start, name=name)
        s = score(traj, problem, criterion)
        table.append((lr, s[0]))
        if s[0] < math.inf and (best_score is None or s < best_score):
            best, best_score = traj, s
    if best is None:
        raise RuntimeError(f"{name or 'optimizer'} diverged on {problem.name!r} at every "
                           f"learning rate in {grid[0]:.3g}..{grid[-1]:.3g}: try smaller ones")
    best.tuning = table
    return best


def compare(problem, optimizer_names=DEFAULT_OPTIMIZERS, steps: int | None = None, tune=True,
            grid=DEFAULT_GRID, criterion=None, start=None) -> dict:
    """``{name: Trajectory}`` for each optimizer on ``problem``.

    ``tune=True``: each optimizer at its best lr on ``grid`` (``tune_learning_rate``);
    ``tune=False``: at its default lr.  ``steps`` defaults to ``problem.default_steps``.
    An optimizer that diverges at every lr is left out of the dict (with a warning), and so is
    a second-order method that cannot work on the problem (LM on the saddle, which is not a
    sum of squares).  Second-order methods are never tuned.
    """
    import warnings

    problem = get_problem(problem)
    steps = problem.default_steps if steps is None else steps
    names = list(optimizer_names)
    for n in names:
        optimizer_by_name(n)  # fail on a bad name before any work
    out = {}
    for n in names:
        if is_second_order(n):   # no learning rate to tune
            try:
                out[n] = run(optimizer_by_name(n), problem, steps, start=start, name=n)
            except second_order.SecondOrderError as exc:
                warnings.warn(f"{n} left out on {problem.name}: {exc}", RuntimeWarning,
                              stacklevel=2)
            continue
        if not tune:
            out[n] = run(optimizer_by_name(n), problem, steps, start=start, name=n)
            continue
        try:
            out[n] = tune_learning_rate(n, problem, steps, grid=grid, criterion=criterion,
                                        start=start, name=n)
        except RuntimeError as exc:
            warnings.warn(str(exc), RuntimeWarning, stacklevel=2)
    return out
