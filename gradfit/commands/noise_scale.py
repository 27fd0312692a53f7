"""`gradfit noise-scale`: train once with the GradientNoiseScale callback, report B_simple over
training and a recommended batch size.

Recommendation (McCandlish et al. 2018, Sec. 2.2-2.3 and Sec. 4): the critical batch size, where
training costs twice the minimum steps and twice the minimum examples, is predicted by the noise
scale, B_crit ~ B_noise ~ B_simple.  B_simple grows as the loss falls, so the batch size that
suits the END of training is the larger one; we take the median of B_simple over the last half
of the measured steps and round it to the nearest power of two (in log2), clipped to
[1, training examples].  Caveats, from the paper: B_simple ignores the Hessian (B_noise =
tr(H Sigma)/(G^T H G) is what enters the theory) and on MNIST it exceeded the measured B_crit by
about 2.5x (start) to 4.5x (average); early in training a batch smaller than the recommendation
loses nothing.  ``gradfit batch-sweep`` measures B_crit itself.

Writes <out>/b_simple.csv (step, epoch, b_simple, g_sq, trace_sigma), b_simple.png,
history.csv of the epochs and results.json.
"""
from __future__ import annotations

import csv
import math
import os

import numpy as np

from .. import callbacks, datasets, optimizers
from ..noise_scale import plot_b_simple
from ..utils import set_random_seed
from .types import integer, number
from .common import add_data_arguments, build_network, load_data, parse_hidden, run_folder, write_json


def add_model_arguments(p, hidden="128", optimizer="sgd", lr=0.1):
    """Options shared with `gradfit batch-sweep`."""
    add_data_arguments(p)
    p.add_argument("--hidden", default=hidden, help=f"hidden layer widths, e.g. 256 or 128,64 (default {hidden})")
    p.add_argument("--activation", default="relu", help="relu, tanh, sigmoid, ... (default relu)")
    p.add_argument("--optimizer", default=optimizer,
                   help=f"sgd, adam, ... (default {optimizer}: plain SGD, as the paper's MNIST runs)")
    p.add_argument("--val-fraction", type=number(above=0.0, below=1.0), default=0.1,
                   help="fraction of the training set held out for validation (default 0.1)")
    p.add_argument("--seed", type=integer(0), default=0, help="seed for weights, split and shuffling (default 0)")
    p.add_argument("--out", default=None, help="output folder (default runs/<command>-<timestamp>)")


def add_arguments(p):
    add_model_arguments(p)
    p.add_argument("--lr", "--learning-rate", dest="lr", type=number(above=0.0), default=0.1,
                   help="learning rate (default 0.1)")
    p.add_argument("--batch-size", type=integer(1), default=128, help="batch size to train with (default 128)")
    p.add_argument("--epochs", type=integer(1), default=5, help="epochs (default 5)")
    p.add_argument("--every", type=integer(1), default=1,
                   help="measure every K steps (default 1: cheap on the loop's gradient norms)")
    p.add_argument("--ema", type=number(0.0, below=1.0), default=0.95, help="EMA beta of |G|^2 and tr(Sigma) (default 0.95)")
    p.add_argument("--min-steps", type=integer(1), default=10, help="measured steps before a value (default 10)")


def make_optimizer(name, lr):
    return optimizers.create(name, learning_rate=float(lr))


def prepare(args):
    """(train, validation, dataset, hidden widths) with the arguments checked."""
    hidden = parse_hidden(args.hidden)
    ds = load_data(args)
    if ds.num_classes is None:
        raise ValueError(f"--data {args.data!r} has no class labels; noise-scale and batch-sweep "
                         "train classifiers (digits, mnist, fashion-mnist or a labelled file)")
    tr, va, _ = datasets.train_val_test_split(ds.x_train, ds.y_train, val_fraction=args.val_fraction,
                                              seed=args.seed, stratify=True)
    return tr, va, ds, hidden


def new_model(args, ds, hidden, n_in, lr):
    model = build_network(n_in, hidden, args.activation, 0.0, ds.num_classes, 1)
    model.compile(optimizer=make_optimizer(args.optimizer, lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def power_of_two(b, lo=1, hi=None) -> int:
    """2^round(log2 b), clipped to the powers of two within [lo, hi]."""
    if not (b is not None and math.isfinite(b) and b > 0):
        raise ValueError(f"need a positive batch size to round, got {b!r}")
    k = int(round(math.log2(b)))
    k = max(k, math.ceil(math.log2(lo)))
    if hi is not None:
        k = min(k, math.floor(math.log2(hi)))
    return 2 ** k


def recommend(steps, values, n_train):
    """(median B_simple over the last half of the measured steps, its power of two) or (None, None)."""
    vals = [v for v in values[len(values) // 2:] if v is not None]
    if not vals:
        return None, None
    late = float(np.median(vals))
    return late, power_of_two(late, 1, n_train)


def run(args):
    set_random_seed(args.seed)
    (x_tr, y_tr), (x_val, y_val), ds, hidden = prepare(args)
    if args.batch_size > len(x_tr):
        raise ValueError(f"--batch-size {args.batch_size} is larger than the {len(x_tr)} training "
                         f"examples; use at most {len(x_tr)}")
    model = new_model(args, ds, hidden, x_tr.shape[1], args.lr)
    folder = run_folder(args.out, "noise-scale")
    noise = callbacks.GradientNoiseScale(ema=args.ema, min_steps=args.min_steps, every=args.every)
    cbs = [noise, callbacks.CSVLogger(os.path.join(folder, "history.csv"))]
    hist = model.fit(x_tr, y_tr, batch_size=args.batch_size, epochs=args.epochs,
                     validation_data=(x_val, y_val), callbacks=cbs, verbose=0).history
    if model.comm.rank != 0:
        return 0
    h = noise.history
    steps_per_epoch = len(x_tr) // args.batch_size
    with open(os.path.join(folder, "b_simple.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "epoch", "b_simple", "g_sq", "trace_sigma"])
        for s, b, g, t in zip(h["step"], h["b_simple"], h["g_sq"], h["trace_sigma"]):
            w.writerow([s, (s - 1) // steps_per_epoch + 1, "" if b is None else f"{b:.6g}", f"{g:.6g}", f"{t:.6g}"])
    late, rec = recommend(h["step"], h["b_simple"], len(x_tr))
    title = f"{ds.name} {x_tr.shape[1]}-{'-'.join(map(str, hidden))}-{ds.num_classes}, B={args.batch_size}"
    try:
        plot_b_simple(h["step"], h["b_simple"], os.path.join(folder, "b_simple.png"),
                      title=f"B_simple over training: {title}")
    except ImportError as exc:
        print(f"(no plot: {exc})")
    rows = []
    print(f"Gradient noise scale, {title}, {args.optimizer} lr={args.lr}, route: {noise.route}")
    print(f"{'epoch':>5} {'step':>7} {'loss':>8} {'val_acc':>8} {'B_simple':>10}")
    for e in range(len(hist["loss"])):
        b = hist["b_simple"][e]
        rows.append({"epoch": e + 1, "step": (e + 1) * steps_per_epoch, "loss": hist["loss"][e],
                     "val_accuracy": hist["val_accuracy"][e], "b_simple": None if math.isnan(b) else b})
        bs = "n/a" if math.isnan(b) else f"{b:.4g}"
        print(f"{e + 1:>5} {(e + 1) * steps_per_epoch:>7} {hist['loss'][e]:>8.4f} "
              f"{hist['val_accuracy'][e]:>8.4f} {bs:>10}")
    first = next((b for b in h["b_simple"] if b is not None), None)
    if rec is None:
        print(f"No B_simple yet ({noise.status}): train longer or lower --min-steps")
    else:
        print(f"B_simple: {first:.4g} at its first value, median {late:.4g} over the last half of training.\n"
              f"Recommended batch size: {rec} (B_simple ~ B_crit, McCandlish et al. 2018, rounded to a "
              f"power of two). B_simple tends to exceed B_crit (2.5-4.5x on the paper's MNIST), so "
              f"{max(1, rec // 4)}-{rec} is the efficient range; `gradfit batch-sweep` measures B_crit.")
    write_json(os.path.join(folder, "results.json"), {
        "command": "noise-scale", **{k: v for k, v in vars(args).items() if not k.startswith("_")},
        "dataset": ds.name, "train_examples": len(x_tr), "route": noise.route,
        "b_simple_first": first, "b_simple_late_median": late, "recommended_batch_size": rec,
        "status": noise.status, "epochs": rows})
    print(f"Output: {folder} (b_simple.csv, b_simple.png, history.csv, results.json)")
    return 0
