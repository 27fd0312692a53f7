"""`gradfit compare`: optimizers side by side, with pictures.

    gradfit compare toy [--problem rosenbrock] [--optimizers sgd adam ...] [--steps N] [--gif] [--out DIR]
    gradfit compare net [--data mnist|digits] [--epochs N] [--optimizers ...] [--quick] [--out DIR]

Each writes a run folder (default ``runs/compare-<toy|net>-<timestamp>``) with PNG figures, a
CSV of results and a Markdown summary.  Both are thin layers over
``gradfit.lab.toy.run_toy_comparison`` and ``gradfit.lab.net.run_net_comparison``.
"""
from __future__ import annotations

import sys

from ..lab.net import run_net_comparison, setup_for
from ..lab.toy import run_toy_comparison
from .common import run_folder


def _names(values) -> list | None:
    """``--optimizers adam,sgd rmsprop`` -> ["adam", "sgd", "rmsprop"] (commas or spaces)."""
    if not values:
        return None
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def add_arguments(p):
    sub = p.add_subparsers(dest="target", metavar="{toy,net}")
    toy = sub.add_parser("toy", help="2-D test problems: contours with paths, loss per step",
                         description="Optimizers on a 2-D problem, each at its tuned learning rate.")
    toy.add_argument("--problem", default="rosenbrock",
                     help="rosenbrock, beale, himmelblau, rastrigin, saddle, long_valley (default rosenbrock)")
    toy.add_argument("--optimizers", nargs="+", default=None,
                     help="names, e.g. sgd momentum nesterov nesterov_lookahead adagrad rmsprop adadelta adam "
                          "(default: all but nesterov_lookahead)")
    toy.add_argument("--steps", type=int, default=None, help="steps per run (default: the problem's own)")
    toy.add_argument("--gif", action="store_true", help="also write an animated GIF of the paths")
    toy.add_argument("--out", default=None, help="run folder (default runs/compare-toy-<timestamp>)")

    net = sub.add_parser("net", help="the Adam paper's Figure 2 setup: cost per iteration, test accuracy",
                         description="Optimizers training a ReLU network with dropout, each at the best "
                                     "learning rate of a small grid on a short budget.")
    net.add_argument("--data", default="mnist", choices=["mnist", "digits"],
                     help="mnist: 784-1000-1000-10 (files in $GRADFIT_DATA/mnist/); digits: 64-128-128-10, "
                          "offline and quick (default mnist)")
    net.add_argument("--data-dir", default=None, help="folder holding mnist/ (overrides $GRADFIT_DATA)")
    net.add_argument("--epochs", type=int, default=None, help="full budget in epochs (default: mnist 10, digits 60)")
    net.add_argument("--tune-epochs", type=float, default=None,
                     help="budget of each learning-rate trial; a fraction < 1 is one pass over that "
                          "fraction of the training set (default: mnist 0.5, digits 10)")
    net.add_argument("--train-examples", type=int, default=None,
                     help="train on a random subset of this many examples (default: all)")
    net.add_argument("--optimizers", nargs="+", default=None,
                     help="names, e.g. nesterov adagrad rmsprop adadelta adam (the default)")
    net.add_argument("--seed", type=int, default=0, help="seed for data subsets, weights, batches, dropout")
    net.add_argument("--quick", action="store_true",
                     help="the digits variant on a short budget (20 epochs, 5-epoch trials): seconds")
    net.add_argument("--out", default=None, help="run folder (default runs/compare-net-<timestamp>)")


def run(args):
    target = getattr(args, "target", None)
    if target not in ("toy", "net"):
        raise ValueError(f"gradfit compare needs a target, got {target!r}: use 'gradfit compare toy' "
                         f"or 'gradfit compare net' (add --help for their options)")
    if target == "toy":
        out = run_folder(args.out, "compare-toy")
        if args.steps is not None and args.steps < 1:
            raise ValueError(f"--steps must be a positive integer, got {args.steps}")
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
