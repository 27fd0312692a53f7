"""`gradfit compare`: optimizers side by side, with pictures.

    gradfit compare toy [--problem rosenbrock] [--optimizers sgd adam ...] [--steps N] [--gif] [--out DIR]
    gradfit compare net [--data mnist|digits] [--epochs N] [--optimizers ...] [--quick] [--out DIR]
    gradfit compare second-order [--problems sin parity cancer] [--sweep sin] [--threads N] ...

Each writes a run folder (default ``runs/compare-<target>-<timestamp>``) with PNG figures,
CSVs of results and a Markdown summary.  They are thin layers over
``gradfit.lab.toy.run_toy_comparison``, ``gradfit.lab.net.run_net_comparison`` and
``gradfit.lab.second_order.run_second_order_comparison``.
"""
from __future__ import annotations

import os
import sys

from ..lab.net import run_net_comparison, setup_for
from ..lab.second_order import report
from ..lab.second_order.runs import DEFAULT_METHODS, Budget, check_method
from ..lab.toy import run_toy_comparison
from .common import run_folder
from .types import integer, number

TARGETS = ("toy", "net", "second-order")


def _names(values) -> list | None:
    """``--optimizers adam,sgd rmsprop`` -> ["adam", "sgd", "rmsprop"] (commas or spaces)."""
    if not values:
        return None
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def add_arguments(p):
    sub = p.add_subparsers(dest="target", metavar="{toy,net,second-order}")
    toy = sub.add_parser("toy", help="2-D test problems: contours with paths, loss per step",
                         description="Optimizers on a 2-D problem, each at its tuned learning rate.")
    toy.add_argument("--problem", default="rosenbrock",
                     help="rosenbrock, beale, himmelblau, rastrigin, saddle, long_valley (default rosenbrock)")
    toy.add_argument("--optimizers", nargs="+", default=None,
                     help="names, e.g. sgd momentum nesterov nesterov_lookahead adagrad rmsprop adadelta adam "
                          "newton lm bfgs lbfgs newton_cg gauss_newton (default: the first-order ones "
                          "but nesterov_lookahead, and newton lm bfgs)")
    toy.add_argument("--steps", type=integer(1), default=None, help="steps per run (default: the problem's own)")
    toy.add_argument("--gif", action="store_true", help="also write an animated GIF of the paths")
    toy.add_argument("--out", default=None, help="run folder (default runs/compare-toy-<timestamp>)")

    net = sub.add_parser("net", help="the Adam paper's Figure 2 setup: cost per iteration, test accuracy",
                         description="Optimizers training a ReLU network with dropout, each at the best "
                                     "learning rate of a small grid on a short budget.")
    net.add_argument("--data", default="mnist", choices=["mnist", "digits"],
                     help="mnist: 784-1000-1000-10 (files in $GRADFIT_DATA/mnist/); digits: 64-128-128-10, "
                          "offline and quick (default mnist)")
    net.add_argument("--data-dir", default=None, help="folder holding mnist/ (overrides $GRADFIT_DATA)")
    net.add_argument("--epochs", type=integer(1), default=None, help="full budget in epochs (default: mnist 10, digits 60)")
    net.add_argument("--tune-epochs", type=number(above=0.0), default=None,
                     help="budget of each learning-rate trial; a fraction < 1 is one pass over that "
                          "fraction of the training set (default: mnist 0.5, digits 10)")
    net.add_argument("--train-examples", type=integer(1), default=None,
                     help="train on a random subset of this many examples (default: all)")
    net.add_argument("--optimizers", nargs="+", default=None,
                     help="names, e.g. nesterov adagrad rmsprop adadelta adam (the default)")
    net.add_argument("--seed", type=integer(0), default=0, help="seed for data subsets, weights, batches, dropout")
    net.add_argument("--quick", action="store_true",
                     help="the digits variant on a short budget (20 epochs, 5-epoch trials): seconds")
    net.add_argument("--out", default=None, help="run folder (default runs/compare-net-<timestamp>)")
    _second_order_arguments(sub)


def _second_order_arguments(sub):
    so = sub.add_parser(
        "second-order", help="Newton, Gauss-Newton, LM, BFGS, L-BFGS, Newton-CG against SGD, "
                             "momentum, Adam: MATLAB's benchmarks and a width sweep",
        description="Each method from the same weights, full batch, until MATLAB's mse goal, "
                    "its memory wall (the guard refuses: nothing is allocated), its own stop, "
                    "or the budget; figures of mse against iterations, seconds and memory. "
                    "numpy's and SciPy's BLAS pools are both set to --threads and printed.")
    so.add_argument("--problems", nargs="+", default=["sin", "parity", "cancer"],
                    choices=["sin", "parity", "cancer", "none"],
                    help="MATLAB's SIN 1-5-1, PARITY 3-10-10-1, CANCER (scikit-learn's set, "
                         "30-5-5-2); none: only the sweep (default: all three)")
    so.add_argument("--sweep", default="sin", choices=["sin", "cancer", "none"],
                    help="the one-hidden-layer problem to widen (default sin)")
    so.add_argument("--sweep-weights", nargs="+", type=integer(3), default=None,
                    help="weight counts of the sweep (default 20 100 1000 10000 100000)")
    so.add_argument("--methods", nargs="+", default=None,
                    help="lm gauss_newton newton newton_cg bfgs lbfgs sgd momentum adam (the default)")
    so.add_argument("--seeds", type=integer(1), default=1,
                    help="initial weights per problem and method; tables give medians (default 1)")
    so.add_argument("--max-iterations", type=integer(1), default=1000,
                    help="iterations per second-order run (default 1000, MATLAB's epochs)")
    so.add_argument("--first-order-iterations", type=integer(1), default=20000,
                    help="iterations per first-order run (default 20000)")
    so.add_argument("--tune-iterations", type=integer(1), default=2000,
                    help="iterations per learning-rate trial of a first-order method (default 2000)")
    so.add_argument("--max-seconds", type=number(above=0), default=None,
                    help="wall seconds per run (default: none, so iteration counts do not depend "
                         "on the machine)")
    so.add_argument("--memory-limit", type=number(above=0), default=None,
                    help="bytes the memory guard may use, e.g. 2e9 (default: $GRADFIT_MEMORY_AVAILABLE, "
                         "else MemAvailable)")
    so.add_argument("--threads", type=integer(1), default=None,
                    help="BLAS threads of numpy's and SciPy's pools (default: the CPU count)")
    so.add_argument("--no-measure", action="store_true",
                    help="skip measuring each method's peak memory (one extra untimed iteration)")
    so.add_argument("--quick", action="store_true",
                    help="sin and parity, a sweep of 20 100 1000 weights, first-order budget 5000: "
                         "seconds")
    so.add_argument("--out", default=None,
                    help="run folder (default runs/compare-second-order-<timestamp>)")


def run(args):
    target = getattr(args, "target", None)
    if target not in TARGETS:
        raise ValueError(f"gradfit compare needs a target, got {target!r}: use 'gradfit compare toy', "
                         f"'gradfit compare net' or 'gradfit compare second-order' (add --help for "
                         f"their options)")
    if target == "second-order":
        return _run_second_order(args)
    if target == "toy":
        out = run_folder(args.out, "compare-toy")
        result = run_toy_comparison(out, problem=args.problem, optimizers=_names(args.optimizers),
                                    steps=args.steps, gif=args.gif)
    else:
        data = "digits" if args.quick else args.data
        overrides = {"epochs": 20, "tune_epochs": 5} if args.quick else {}
        names = _names(args.optimizers)
        given = {"epochs": args.epochs, "tune_epochs": args.tune_epochs, "seed": args.seed,
                 "train_examples": args.train_examples, "optimizers": tuple(names) if names else None}
        overrides.update({k: v for k, v in given.items() if v is not None})
        setup = setup_for(data, **overrides)
        out = run_folder(args.out, "compare-net")
        result = run_net_comparison(out, setup, data_dir=args.data_dir,
                                    log=lambda m: print(m, flush=True))
    print(open(result["files"]["summary"]).read() if "summary" in result["files"] else "", file=sys.stdout)
    print(f"Run folder: {out}")
    return 0


def _run_second_order(args) -> int:
    methods = _names(args.methods) or list(DEFAULT_METHODS)
    for m in methods:
        check_method(m)
    problems = [p for p in args.problems if p != "none"]
    sweep = None if args.sweep == "none" else args.sweep
    weights = args.sweep_weights or report.SWEEP_WEIGHTS
    budget = Budget(args.max_iterations, args.first_order_iterations, args.tune_iterations,
                    args.max_seconds)
    if args.quick:
        problems, weights = [p for p in problems if p != "cancer"], (20, 100, 1000)
        budget = Budget(args.max_iterations, 5000, 1000, args.max_seconds)
    if not problems and sweep is None:
        raise ValueError("nothing to run: --problems none and --sweep none")
    threads = args.threads or os.cpu_count() or 1
    report.set_blas_threads(threads)
    env = report.environment()
    print(f"CPU: {env['cpu']}; numpy {env['versions']['numpy']}, SciPy {env['versions']['scipy']}")
    for pool in env["blas"]:
        print(f"BLAS: {pool['library']} {pool['version']}, kernel {pool['kernel']}, "
              f"threads: {pool['threads']}")
    out = run_folder(args.out, "compare-second-order")
    report.run_second_order_comparison(out, problems, sweep, weights, methods, args.seeds, budget,
                                       args.memory_limit, not args.no_measure,
                                       log=lambda m: print(m, flush=True))
    print(f"Run folder: {out} (summary.md, figures, results.csv)")
    return 0
