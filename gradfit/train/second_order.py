"""How ``fit`` and ``train_on_batch`` drive a second-order method
(`gradfit.optimizers.second_order`): one iteration per step, on an objective instead of a
gradient.

* `prepare` (``fit``'s checks, before any work): the batch is the whole training set unless
  one is given, so **one epoch is one full-batch iteration** (History's ``loss`` of an epoch is
  the full-batch loss before its iteration, as a first-order epoch's is the mean of its
  batches' losses before their updates). A smaller batch only when the method was built with
  ``allow_mini_batch=True`` (then each step is one iteration on that batch). ``"auto"``,
  callbacks that change a learning rate or measure mini-batch gradients (these methods have
  neither), dropout (a line search
  compares losses of one function), a float32 model, a loss the method has no form for, the
  GPU backend and a network whose matrices do not fit in memory are each refused with one
  message, before anything is trained.
* `step` (`train_step`'s branch): the `Objective` over this rank's rows with the global batch
  as its number of examples, so every evaluation inside the iteration is one Allreduce of one
  flat buffer and every rank takes the same step; one ``iterate``; the metrics on the outputs
  before it; the method's own stop (``info["stop"]``: converged, mu at mu_max, a failed line
  search) ends training after this epoch with ``stop_reason = "optimizer"``.  Under MPI one
  more Allreduce of one number per iteration agrees on a Ctrl-C / SIGTERM.
* `optimizer_logs`: what an epoch's logs get from the optimizer: the learning rate of a
  first-order one; LM's ``mu``.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_backend
from ..callbacks.adaptive_batch_size import AUTO, AdaptiveBatchSize
from ..callbacks.base import print_msg
from ..callbacks.gradient_noise_scale import GradientNoiseScale
from ..callbacks.learning_rate_scheduler import LearningRateScheduler
from ..callbacks.reduce_lr_on_plateau import ReduceLROnPlateau
from ..checks import ArgumentError, check_int
from ..layers import Dropout
from ..optimizers.second_order import (Objective, SecondOrderError, SecondOrderMethod,
                                       check_full_batch)
from . import data

#: callbacks that change a learning rate or read a mini-batch gradient's norms: these
#: methods have neither
_FIRST_ORDER_CALLBACKS = (ReduceLROnPlateau, LearningRateScheduler, AdaptiveBatchSize,
                          GradientNoiseScale)


def is_second_order(optimizer) -> bool:
    return isinstance(optimizer, SecondOrderMethod)


def prepare(model, source, batch_size, callbacks) -> int:
    """The global batch of every step (the whole set unless given), after every check of the
    module docstring; raises before anything is trained. ``source``: the training rows, bound
    to the model (`gradfit.train.data`; a generator or a PyDataset has no whole set)."""
    method = model.optimizer
    name = method.name
    if source.unit != "row":
        raise SecondOrderError(f"'{name}' takes the whole training set as one batch: give it "
                               f"rows (arrays, a memmap, a packed directory), not "
                               f"{data.describe(source)}")
    n = len(source)
    if get_backend() != "numpy":
        raise SecondOrderError(f"'{name}' runs on the CPU (numpy): its matrices and SciPy's "
                               f"solvers are host-side; set_backend('numpy') first")
    if batch_size == AUTO:
        raise ArgumentError("batch_size", batch_size, f"None (the whole set) for '{name}', a "
                            "full-batch method", "an adaptive batch needs a first-order optimizer")
    batch_size = n if batch_size is None else check_int("batch_size", batch_size, 1, n)
    check_full_batch(name, batch_size, n, method.allow_mini_batch)
    for cb in callbacks or []:
        if isinstance(cb, _FIRST_ORDER_CALLBACKS):
            raise ArgumentError("callbacks", type(cb).__name__, f"callbacks that need no learning "
                                f"rate and no mini-batch gradients: '{name}' has neither",
                                "drop it")
    if any(isinstance(layer, Dropout) and layer.rate > 0 for layer in model.layers):
        raise SecondOrderError(f"'{name}' compares losses of one function within an iteration, "
                               "and dropout would change the function at every evaluation: "
                               "remove the Dropout layers, or train with a first-order optimizer")
    objective = Objective(model, *data.first_rows(model, source), examples=batch_size)  # dtype, loss
    method.check(objective)
    method.check_memory(model.flat.size, network=objective.describe(), examples=batch_size,
                        outputs=model.output_dim)
    return batch_size


def step(model, state, x, y, global_batch) -> tuple:
    """One iteration on this rank's rows ``(x, y)`` of a global batch of ``global_batch`` rows
    (module docstring).  Returns ``(loss before the iteration, this rank's metric sums)``."""
    method = model.optimizer
    metric_sums = []
    if model.metrics:            # on the outputs before the step, as a first-order step's
        y_pred = model.forward(x)
        metric_sums = [m.batch_sum(y_pred, y) for _, m in model.metrics]
    objective = Objective(model, x, y, examples=global_batch)
    _, info = method.iterate(objective, model.params, state.init_optimizer(model))
    if info["stop"] is not None:
        message = f"{method.name} stopped at epoch {state.epoch + 1}: {info['stop']}"
        print_msg(model, message)
        model.stop_training = True
        state.stop("optimizer", message)
    flag = np.array([1.0 if state.interrupt_requested else 0.0])
    if model.comm.size > 1:
        model.comm.allreduce_(flag)
    if flag[0] > 0:
        state.stop("interrupted", f"interrupted at epoch {state.epoch + 1}, step {state.step + 1}")
    return info["loss_before"], metric_sums


def optimizer_logs(model, state) -> dict:
    """What an epoch's logs get from the optimizer: a first-order one's learning rate; LM's
    damping ``mu`` (the one the next iteration starts from); nothing from the other
    second-order methods, which have no rate."""
    opt = model.optimizer
    if is_second_order(opt):
        return {"mu": float(state.opt["mu"])} if "mu" in state.opt else {}
    return {"learning_rate": float(opt.current_learning_rate(state.opt["step"]))}


def announcement(model, n, batch_size) -> str | None:
    """How ``fit`` says what one epoch is, for a second-order method (else None)."""
    if not is_second_order(model.optimizer):
        return None
    what = "one full-batch iteration" if batch_size >= n else \
        f"one iteration per batch of {batch_size} ({n // batch_size} batches)"
    return f"{model.optimizer.name}, {what} per epoch"
