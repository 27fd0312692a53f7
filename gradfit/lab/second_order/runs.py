"""The second-order lab's runs: each method on each problem from the same initial weights,
until it reaches the problem's goal, hits its memory wall, stops, or runs out of budget.

One run (`run_method`) of method M on problem P with seed s:

1. **The wall.**  For a second-order method, the memory guard (`gradfit.curvature.check_memory`)
   is asked whether M's matrices fit in ``memory_limit`` bytes (default: what the guard itself
   uses, ``$GRADFIT_MEMORY_AVAILABLE`` or MemAvailable).  If not, the run ends there, ``ended
   = "wall"``, having allocated nothing: the lecture's point, measured.
2. **Memory.**  ``memory_bytes``: M's peak bytes by the arithmetic of `gradfit.memory`
   (`method_bytes`; first-order methods: their state arrays) plus the weights and the gradient
   (2 n float64), which every method holds.  ``measured_bytes`` (unless ``measure=False``):
   how far ``init`` and one iteration raise the process's peak memory
   (`gradfit.memory.measure_peak`: peak RSS on Linux, so LAPACK's own allocations count),
   on a fresh copy of the same start, outside the timed run.
3. **The timed run.**  A float64 model of P's architecture with seed s's weights
   (`problems.build_model`), the full-batch `Objective` (mse, MATLAB's
   ``performFcn``), and the clock started before M allocates its state.  An iteration is one
   full-batch iteration: a first-order step (one gradient), or one ``iterate`` of a
   second-order method (however many evaluations its damping or line search takes; they are
   counted).  After each, the full-batch loss at the new weights and the seconds so far are
   recorded.
4. **The end** (``ended``): ``"goal"`` (loss <= P's target, MATLAB's ``goal``), ``"stopped"``
   (the method's own stop: gradient tolerance, mu above mu_max, a failed line search),
   ``"refused"`` (the method refused the system it met, e.g. a singular Gauss-Newton matrix:
   ``detail`` holds the message), ``"diverged"`` (the loss is not finite), ``"budget"``
   (``Budget.second_order`` or ``Budget.first_order`` iterations) or ``"time"``
   (``Budget.seconds``).

First-order methods (SGD, momentum 0.9, Adam at Keras's betas) are full-batch too: the same
iterations, the same objective.  Their learning rate is chosen on seed 0 from ``LR_GRID`` by
`tune_learning_rate`: the fewest iterations to the goal within ``Budget.tune`` iterations, or,
if no rate reaches it, the lowest final loss (machine-independent, no clock involved).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ... import optimizers
from ...curvature import InsufficientMemoryError, check_memory
from ...memory import measure_peak, method_bytes
from ...optimizers import second_order
from .problems import Problem, build_model

SECOND_ORDER = ("lm", "gauss_newton", "newton", "newton_cg", "bfgs", "lbfgs")
#: first-order methods and the number of weight-sized state arrays each keeps
FIRST_ORDER = {"sgd": 0, "momentum": 1, "adam": 2}
DEFAULT_METHODS = (*SECOND_ORDER, *FIRST_ORDER)
LR_GRID = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
ENDINGS = ("goal", "wall", "stopped", "refused", "diverged", "budget", "time")


@dataclass(frozen=True)
class Budget:
    """Iterations per run (second-order: MATLAB's default ``epochs`` 1000; first-order: more,
    as they need more), iterations per learning-rate trial, and optional wall seconds per run
    (None: no time limit, so the iteration counts do not depend on the machine)."""
    second_order: int = 1000
    first_order: int = 20000
    tune: int = 2000
    seconds: float | None = None

    def iterations(self, method: str) -> int:
        return self.second_order if method in SECOND_ORDER else self.first_order


@dataclass
class MethodRun:
    """One run (module docstring).  ``losses[k]`` and ``seconds[k]``: the full-batch mse and
    the wall seconds after k iterations (``[0]``: the start, 0 s)."""
    problem: str
    method: str
    seed: int
    weights: int
    target: float
    ended: str
    detail: str = ""
    losses: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    memory_bytes: int = 0
    measured_bytes: int | None = None
    measured_how: str = ""
    learning_rate: float | None = None
    evaluations: dict = field(default_factory=dict)

    @property
    def iterations(self) -> int:
        return max(len(self.losses) - 1, 0)

    @property
    def reached(self) -> bool:
        return self.ended == "goal"

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1]) if self.losses else math.nan

    @property
    def total_seconds(self) -> float:
        return float(self.seconds[-1]) if self.seconds else 0.0


def check_method(name: str) -> str:
    if name not in DEFAULT_METHODS:
        raise ValueError(f"unknown method {name!r} for the second-order lab; valid: "
                         f"{', '.join(DEFAULT_METHODS)}")
    return name


def memory_bytes(method: str, problem: Problem) -> int:
    """Peak float64 bytes of `method` on `problem` (module docstring, step 2)."""
    n, m, d = problem.weights, len(problem.x), problem.architecture[-1]
    own = (method_bytes(method, n, examples=m, outputs=d)["peak_bytes"]
           if method in SECOND_ORDER else FIRST_ORDER[method] * n * 8)
    return own + 2 * n * 8


class _Driver:
    """One method on one fresh model: ``start()`` allocates its state, ``step()`` does one
    iteration and returns ``(loss, stepped, stop, refused)``: the loss at the weights after
    it, whether the weights changed, the method's stop message and a refusal's message."""

    def __init__(self, problem: Problem, method: str, seed: int, learning_rate=None):
        self.model = build_model(problem, seed)
        self.objective = second_order.Objective(self.model, problem.x, problem.y, loss=problem.loss)
        self.method, self.learning_rate = method, learning_rate
        self.network = "-".join(map(str, problem.architecture))

    def start(self) -> None:
        params = self.model.params
        if self.method in SECOND_ORDER:
            self.rule = second_order.get(self.method)
            self.state = self.rule.init(params, network=self.network)
        else:
            self.rule = optimizers.get(self.method)
            self.rule.learning_rate = float(self.learning_rate)
            self.state = self.rule.init(params)
            self.f, self.g = self.objective.loss_and_grad(params)

    def step(self):
        params = self.model.params
        if self.method in SECOND_ORDER:
            try:
                loss, info = self.rule.iterate(self.objective, params, self.state)
            except second_order.SecondOrderError as exc:
                return math.nan, False, None, str(exc)
            return loss, info["step"], info["stop"], None
        self.rule.update(params, self.g, self.state)
        self.f, self.g = self.objective.loss_and_grad(params)
        return self.f, True, None, None


def _measure(problem, method, seed, learning_rate) -> tuple:
    """``(bytes, how)`` by which ``start`` and one ``step`` on a fresh start raise the peak
    memory (`gradfit.memory.measure_peak`)."""
    driver = _Driver(problem, method, seed, learning_rate)

    def first_iteration():
        driver.start()
        driver.step()
    return measure_peak(first_iteration)


def run_method(problem: Problem, method: str, seed: int = 0, budget: Budget = Budget(),
               learning_rate=None, memory_limit=None, measure: bool = True) -> MethodRun:
    """One run of `method` on `problem` (module docstring); a first-order method needs its
    ``learning_rate``."""
    check_method(method)
    if method in FIRST_ORDER and learning_rate is None:
        raise ValueError(f"{method} needs a learning rate: tune_learning_rate() chooses one")
    run = MethodRun(problem.name, method, seed, problem.weights, problem.target, ended="budget",
                    memory_bytes=memory_bytes(method, problem), learning_rate=learning_rate)
    if method in SECOND_ORDER:
        try:
            check_memory(method, problem.weights, network="-".join(map(str, problem.architecture)),
                         available=memory_limit, examples=len(problem.x),
                         outputs=problem.architecture[-1])
        except InsufficientMemoryError as exc:
            run.ended, run.detail = "wall", str(exc)
            return run
    if measure:
        run.measured_bytes, run.measured_how = _measure(problem, method, seed, learning_rate)
    driver = _Driver(problem, method, seed, learning_rate)
    run.losses, run.seconds = [driver.objective.loss(driver.model.params)], [0.0]
    driver.objective.evaluations.update({k: 0 for k in driver.objective.evaluations})
    limit = budget.iterations(method)
    t0 = time.perf_counter()
    driver.start()
    while True:
        loss = run.losses[-1]
        if not math.isfinite(loss):
            run.ended = "diverged"
            break
        if loss <= problem.target:
            run.ended = "goal"
            break
        if run.iterations >= limit:
            run.ended, run.detail = "budget", f"{limit} iterations"
            break
        if budget.seconds is not None and run.seconds[-1] >= budget.seconds:
            run.ended, run.detail = "time", f"{budget.seconds:g} s"
            break
        loss, stepped, stop, refused = driver.step()
        if refused is not None:
            run.ended, run.detail = "refused", refused
            break
        if stepped:
            run.losses.append(float(loss))
            run.seconds.append(time.perf_counter() - t0)
        if stop is not None and not loss <= problem.target:
            run.ended, run.detail = "stopped", stop
            break
    run.evaluations = {k: v for k, v in driver.objective.evaluations.items() if v}
    return run


def tune_learning_rate(problem: Problem, method: str, budget: Budget = Budget(), grid=LR_GRID,
                       seed: int = 0):
    """The learning rate of `grid` with which first-order `method` reaches the goal in the
    fewest iterations within ``budget.tune`` (else the lowest final loss); returns
    ``(lr, [(lr, iterations or None, final loss), ...])``.  Raises RuntimeError when every
    rate diverges."""
    trial = Budget(second_order=budget.second_order, first_order=budget.tune, tune=budget.tune)
    table, best, best_key = [], None, None
    for lr in grid:
        r = run_method(problem, method, seed, trial, learning_rate=float(lr), measure=False)
        table.append((float(lr), r.iterations if r.reached else None, r.final_loss))
        if r.ended == "diverged":
            continue
        key = (0, r.iterations, 0.0) if r.reached else (1, 0, r.final_loss)
        if best_key is None or key < best_key:
            best, best_key = float(lr), key
    if best is None:
        raise RuntimeError(f"{method} diverged on {problem.name} at every learning rate of "
                           f"{list(grid)}: give smaller rates")
    return best, table


def compare_methods(problems, methods=DEFAULT_METHODS, seeds: int = 1, budget: Budget = Budget(),
                    memory_limit=None, measure: bool = True, grid=LR_GRID, log=None) -> dict:
    """Every method on every problem for seeds 0..seeds-1.  Returns ``{"runs": [MethodRun],
    "tuning": {(problem, method): (lr, table)}}``; ``log(text)`` hears of each run."""
    methods = [check_method(m) for m in methods]
    if not methods:
        raise ValueError("methods must name at least one method")
    runs, tuning = [], {}
    for problem in problems:
        for method in methods:
            lr = None
            if method in FIRST_ORDER:
                tuning[(problem.name, method)] = tune_learning_rate(problem, method, budget, grid)
                lr = tuning[(problem.name, method)][0]
            for seed in range(seeds):
                r = run_method(problem, method, seed, budget, lr, memory_limit, measure)
                runs.append(r)
                if log is not None:
                    log(describe(r))
    return {"runs": runs, "tuning": tuning}


def describe(r: MethodRun) -> str:
    """One line about a run, for the console."""
    lr = f" lr {r.learning_rate:g}" if r.learning_rate is not None else ""
    what = {"goal": f"goal after {r.iterations} iterations, {r.total_seconds:.3g} s",
            "wall": "memory wall"}.get(r.ended, f"{r.ended} after {r.iterations} iterations, "
                                                  f"loss {r.final_loss:.3g}")
    return f"{r.problem:<14} {r.method:<13} seed {r.seed}{lr}: {what}"


def median_to_goal(runs) -> tuple:
    """(median iterations, median seconds) over the runs that reached the goal, or (None,
    None)."""
    done = [r for r in runs if r.reached]
    if not done:
        return None, None
    return (float(np.median([r.iterations for r in done])),
            float(np.median([r.total_seconds for r in done])))
