"""`gradfit batch-sweep`: steps S and examples E to reach a target at batch sizes 2^k, the fit
(S/S_min - 1)(E/E_min - 1) = 1 and the critical batch size B_crit = E_min / S_min
(McCandlish et al. 2018).  The measurement is in ``gradfit.noise_scale.sweep``: for every batch
size the best learning rate of a grid (plain SGD by default, as the paper); a batch size that
never reaches the target within --max-epochs is reported and left out of the fit.

Writes <out>/sweep.csv (best run per batch size), runs.csv (every run tried), frontier.png
(runs, fitted curve, B_crit and the median measured B_simple on it) and results.json.
"""
from __future__ import annotations

import csv
import math
import os

import numpy as np

from ..noise_scale import b_crit, fit_steps_examples, plot_frontier
from ..noise_scale.sweep import sweep
from ..utils import set_random_seed
from .common import run_folder, write_json
from .types import integer, number
from .noise_scale import add_model_arguments, new_model, power_of_two, prepare

SCALING = {"none": 0.0, "sqrt": 0.5, "linear": 1.0}


def add_arguments(p):
    add_model_arguments(p)
    p.add_argument("--batch-sizes", default=None,
                   help="comma-separated batch sizes, e.g. 8,32,128,512 (default: 2^min-exp .. 2^max-exp)")
    p.add_argument("--min-exp", type=integer(0), default=3, help="smallest batch size 2^min-exp (default 3: 8)")
    p.add_argument("--max-exp", type=integer(0), default=10, help="largest batch size 2^max-exp (default 10: 1024)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--target-loss", type=number(above=0.0), default=None,
                   help="target TRAINING loss, measured on a fixed subset of --eval-examples training "
                        "examples (default 0.25 when no target is given)")
    g.add_argument("--target-accuracy", type=number(above=0.0, below=1.0), default=None, help="target validation accuracy in (0, 1)")
    p.add_argument("--lrs", default="0.01,0.03,0.1,0.3,1",
                   help="learning-rate grid at the smallest batch size (default 0.01,0.03,0.1,0.3,1)")
    p.add_argument("--lr-scaling", default="none", choices=sorted(SCALING),
                   help="multiply the grid by (B/B_min)^p at batch size B: none p=0, sqrt p=0.5, "
                        "linear p=1; the best of the grid is used at every B (default none)")
    p.add_argument("--max-epochs", type=integer(1), default=20, help="budget per run in epochs (default 20)")
    p.add_argument("--eval-examples", type=integer(1), default=2000,
                   help="training examples on which the target loss is measured (default 2000)")
    p.add_argument("--growth", type=number(above=0.0, maximum=1.0), default=0.05,
                   help="checks at steps growing by this fraction: S is exact to it (default 0.05)")
    p.add_argument("--noise-every", type=integer(1), default=10, help="measure B_simple every K steps (default 10)")


def parse_batch_sizes(args, n_train):
    """The batch sizes, checked: positive integers, distinct, at most the training examples."""
    if args.batch_sizes:
        try:
            sizes = [int(s) for s in args.batch_sizes.split(",") if s.strip()]
        except ValueError:
            raise ValueError(f"--batch-sizes must be comma-separated integers like 8,32,128, "
                             f"got {args.batch_sizes!r}") from None
    else:
        if not 0 <= args.min_exp < args.max_exp:
            raise ValueError(f"need 0 <= --min-exp < --max-exp (B_small < B_big), got "
                             f"--min-exp {args.min_exp} --max-exp {args.max_exp}")
        sizes = [2 ** k for k in range(args.min_exp, args.max_exp + 1)]
    bad = [b for b in sizes if b <= 0]
    if bad:
        raise ValueError(f"batch sizes must be positive, got {bad} in {sizes}")
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"batch sizes must be distinct, got {sizes}")
    if len(sizes) < 2:
        raise ValueError(f"the fit needs at least 2 batch sizes (a smallest < a largest), got {sizes}")
    big = [b for b in sizes if b > n_train]
    if big:
        raise ValueError(f"batch sizes {big} are larger than the {n_train} training examples; "
                         f"use at most {n_train} (e.g. --max-exp {int(math.log2(n_train))})")
    return sorted(sizes)


def parse_lrs(text):
    try:
        lrs = [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--lrs must be comma-separated numbers like 0.03,0.1,0.3, got {text!r}") from None
    if not lrs or any(not (math.isfinite(v) and v > 0) for v in lrs):
        raise ValueError(f"--lrs must be positive learning rates, got {text!r}")
    return lrs


def _target(args):
    if args.target_accuracy is not None:
        return "accuracy", args.target_accuracy
    return "loss", 0.25 if args.target_loss is None else args.target_loss


def _write_csv(path, rows, keys):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r[k]) for k in keys})


def run(args):

    kind, target = _target(args)
    lrs = parse_lrs(args.lrs)
    (x_tr, y_tr), (x_val, y_val), ds, hidden = prepare(args)
    sizes = parse_batch_sizes(args, len(x_tr))
    if kind == "loss":
        pick = np.random.default_rng(args.seed).permutation(len(x_tr))[:args.eval_examples]
        eval_xy = (x_tr[np.sort(pick)], y_tr[np.sort(pick)])
    else:
        eval_xy = (x_val, y_val)

    def make_model(lr):
        set_random_seed(args.seed)   # the same initial weights and data order for every run
        return new_model(args, ds, hidden, x_tr.shape[1], lr)

    folder = run_folder(args.out, "batch-sweep")
    what = (f"training loss <= {target} (on {len(eval_xy[0])} training examples)" if kind == "loss"
            else f"validation accuracy >= {target}")
    short = f"train loss <= {target}" if kind == "loss" else f"val accuracy >= {target}"
    net = f"{x_tr.shape[1]}-{'-'.join(map(str, hidden))}-{ds.num_classes}"
    print(f"Batch sweep on {ds.name} ({len(x_tr)} training examples), {net} {args.activation}, "
          f"{args.optimizer}, target {what}; batch sizes {sizes}; lr grid {lrs} "
          f"(scaling {args.lr_scaling}); budget {args.max_epochs} epochs")
    best, runs = sweep(make_model, x_tr, y_tr, sizes, lrs, eval_xy, kind, target, args.max_epochs,
                       lr_power=SCALING[args.lr_scaling], growth=args.growth, noise_every=args.noise_every)
    keys = ["batch_size", "lr", "outcome", "steps", "examples", "seconds", "b_simple_at_end",
            "b_simple_mean", "lr_at_grid_edge"]
    _write_csv(os.path.join(folder, "sweep.csv"), best, keys)
    _write_csv(os.path.join(folder, "runs.csv"), runs, ["batch_size", "lr", "outcome", "steps",
                                                        "last_value", "seconds", "b_simple_at_end"])
    reached = [r for r in best if r["steps"] is not None]
    missed = [r["batch_size"] for r in best if r["steps"] is None]
    print(f"\n{'B':>6} {'lr':>8} {'steps S':>8} {'examples E':>11} {'B_simple':>9}")
    for r in best:
        if r["steps"] is None:
            print(f"{r['batch_size']:>6} {'-':>8} {'not reached within the budget':>30}")
            continue
        bs = "n/a" if r["b_simple_at_end"] is None else f"{r['b_simple_at_end']:.4g}"
        edge = "  (best lr at the grid's edge: widen --lrs)" if r["lr_at_grid_edge"] else ""
        print(f"{r['batch_size']:>6} {r['lr']:>8.4g} {r['steps']:>8} {r['examples']:>11} {bs:>9}{edge}")
    if missed:
        print(f"Not reached within {args.max_epochs} epochs (left out of the fit): batch sizes {missed}")
    result = {"command": "batch-sweep", **{k: v for k, v in vars(args).items() if not k.startswith("_")},
              "dataset": ds.name, "network": net, "train_examples": len(x_tr), "target_kind": kind,
              "target": target, "batch_sizes": sizes, "best": best, "not_reached": missed}
    bsim = [r["b_simple_at_end"] for r in reached if r["b_simple_at_end"] is not None]
    b_simple = float(np.median(bsim)) if bsim else None
    result["b_simple_at_target_median"] = b_simple
    if len({r["batch_size"] for r in reached}) < 2:
        print("Fewer than 2 batch sizes reached the target: no fit (lower the target or raise --max-epochs)")
        result["fit"] = None
    else:
        S = [r["steps"] for r in reached]
        E = [r["examples"] for r in reached]
        s_min, e_min = fit_steps_examples(S, E)
        bc = b_crit(s_min, e_min)
        rec = power_of_two(bc, sizes[0], sizes[-1])
        result["fit"] = {"S_min": s_min, "E_min": e_min, "B_crit": bc, "recommended_batch_size": rec}
        try:
            plot_frontier(S, E, os.path.join(folder, "frontier.png"), S_min=s_min, E_min=e_min,
                          b_simple=b_simple, title=f"{ds.name} {net}: to {short}, best lr per B")
        except ImportError as exc:
            print(f"(no plot: {exc})")
        print(f"\nFit (S/S_min - 1)(E/E_min - 1) = 1: S_min = {s_min:.4g} steps, E_min = {e_min:.4g} "
              f"examples, B_crit = E_min/S_min = {bc:.4g}")
        if b_simple is not None:
            print(f"B_simple at the target (median over batch sizes): {b_simple:.4g} "
                  f"({b_simple / bc:.2g} x B_crit)")
        print(f"Recommended batch size: {rec} (B_crit rounded to a power of two within the swept range)")
    write_json(os.path.join(folder, "results.json"), result)
    print(f"Output: {folder} (sweep.csv, runs.csv, frontier.png, results.json)")
    return 0
