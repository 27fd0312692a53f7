"""What `gradfit train` checks before it prints or writes anything, beyond each flag's own
parse-time check: combinations of flags, the first batch, what a second-order method refuses,
and the memory the network needs against the memory available."""
from __future__ import annotations

import argparse

import numpy as np

from .. import optimizers
from ..callbacks import AdaptiveBatchSize
from ..callbacks.adaptive_batch_size import AUTO
from ..checks import ArgumentError, literal
from ..curvature import InsufficientMemoryError, available_bytes as guard_bytes
from ..memory import available_bytes, human_bytes, training_bytes
from ..optimizers import schedules
from ..optimizers.second_order import check_full_batch

SCHEDULES = ("constant", "linear", "cosine")


def check_combinations(args):
    if args.backup and not args.out:
        raise ArgumentError("backup", True, "given with {out}",
                            "the backup lives in <out>/backup, where a relaunch finds it: add "
                            "{out} DIR")
    if args.schedule == "constant":
        for name, default in (("decay_epochs", None), ("end_lr_fraction", 0.0)):
            if getattr(args, name) != default:
                raise ArgumentError(name, getattr(args, name), "given with {schedule} linear or "
                                    "cosine", "add {schedule} linear (or cosine), or drop it")
    elif args.batch_size == AUTO:
        raise ArgumentError("schedule", args.schedule, "constant with {batch_size} auto",
                            "the decay is counted in steps, and auto changes the steps per "
                            "epoch; give a fixed {batch_size}, or drop {schedule}")
    if args.patience > 0 and args.val_fraction == 0:
        raise ArgumentError("patience", args.patience, "0 when there is no validation set",
                            "early stopping watches val_loss: give {val_fraction} > 0, or "
                            "{patience} 0")


def batch_size_type(text):
    """``--batch-size``: an integer >= 1, or "auto"."""
    if text == AUTO:
        return AUTO
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1 or auto, got {text!r}")
    return value


def first_batch(args, opt, n, ranks) -> int:
    """The batch of the first step; for ``auto`` its options checked against the data and the
    ranks now, before anything is printed (the memory cap is applied by fit)."""
    if isinstance(opt, optimizers.SecondOrderMethod):
        return n if args.batch_size is None else args.batch_size
    if args.batch_size != AUTO:
        return 32 if args.batch_size is None else args.batch_size
    return AdaptiveBatchSize().make_controller(n, ranks, opt).batch_size


def check_second_order(args, opt, n):
    """What fit would refuse for a second-order method, refused before anything is printed:
    float32, dropout, a batch below the training set unless asked, ``auto``."""
    if not isinstance(opt, optimizers.SecondOrderMethod):
        return
    if args.dtype != "float64":
        raise ArgumentError("dtype", args.dtype, f"float64 for --optimizer {opt.name} (its "
                            "matrices lose most of their digits in float32)", "drop {dtype}")
    if args.dropout > 0:
        raise ArgumentError("dropout", args.dropout, f"0 for --optimizer {opt.name}: it compares "
                            "losses of one function within an iteration", "drop {dropout}")
    if args.batch_size == AUTO:
        raise ArgumentError("batch_size", AUTO, f"a number, or left out (the whole set), for "
                            f"--optimizer {opt.name}")
    check_full_batch(opt.name, args.batch_size, n, opt.allow_mini_batch)


def check_memory(sizes, args, opt, batch):
    if isinstance(opt, optimizers.SecondOrderMethod):
        return _second_order_memory(sizes, args, opt, batch)
    slots = len([k for k in opt.init(np.zeros(1)) if k != "step"])
    need = training_bytes(sizes, batch, slots, args.dtype)
    have = available_bytes()
    if have is not None and need["total"] > have:
        parts = ", ".join(f"{k.replace('_', ' ')} {human_bytes(v)}" for k, v in need.items()
                          if k != "total")
        raise ArgumentError("hidden", args.hidden,
                            f"a network that fits in memory: training "
                            f"{'-'.join(map(str, sizes))} at batch {batch} needs "
                            f"{human_bytes(need['total'])} ({parts}; `gradfit memory "
                            f"{' '.join(map(str, sizes))}`) and {human_bytes(have)} are available",
                            "use smaller {hidden} widths or a smaller {batch_size}")


def _second_order_memory(sizes, args, opt, batch):
    """The memory guard with the method's own bytes (its n x n matrices) on top of the
    network's weights, gradient and activations at the full batch."""
    n = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    base = training_bytes(sizes, batch, 0, "float64")["total"]
    have = guard_bytes()     # $GRADFIT_MEMORY_AVAILABLE, else MemAvailable (the guard's)
    try:
        opt.check_memory(n, network="-".join(map(str, sizes)), examples=batch,
                         outputs=sizes[-1], available=None if have is None else max(have - base, 0))
    except InsufficientMemoryError as exc:
        raise ArgumentError("optimizer", opt.name, "an optimizer whose matrices fit in memory",
                            literal(f"{exc} (the network itself takes {human_bytes(base)} "
                                    "more)")) from None


def apply_schedule(args, opt, n):
    """``--schedule linear|cosine``: the optimizer's rate becomes a per-step schedule from its
    rate down to ``rate * --end-lr-fraction`` over ``--decay-epochs`` epochs' steps (fit's
    equal-size batches: ``n // batch`` steps an epoch), held after it."""
    if args.schedule == "constant":
        return
    if isinstance(opt, optimizers.SecondOrderMethod):
        raise ArgumentError("schedule", args.schedule, f"constant for --optimizer {args.optimizer}",
                            "a second-order method sets its own steps: drop {schedule}")
    batch = first_batch(args, opt, n, 1)        # fixed: auto is refused with a schedule
    epochs = args.epochs if args.decay_epochs is None else args.decay_epochs
    steps = max(1, round(epochs * max(1, n // batch)))
    lr = float(opt.learning_rate)
    if args.schedule == "linear":
        opt.learning_rate = schedules.PolynomialDecay(lr, steps, lr * args.end_lr_fraction)
    else:
        opt.learning_rate = schedules.CosineDecay(lr, steps, alpha=args.end_lr_fraction)
