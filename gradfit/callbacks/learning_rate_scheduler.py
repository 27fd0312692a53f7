"""LearningRateScheduler: set the learning rate at the start of every epoch (Keras 3)."""
from __future__ import annotations

import inspect
import math

import numpy as np

from gradfit.callbacks.base import Callback, check_int, float_learning_rate, print_msg


def _n_positional(fn) -> int | None:
    """How many positional arguments `fn` accepts (None when it takes *args or is opaque)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    kinds = [p.kind for p in sig.parameters.values()]
    if inspect.Parameter.VAR_POSITIONAL in kinds:
        return None
    return sum(k in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
               for k in kinds)


class LearningRateScheduler(Callback):
    """``lr = schedule(epoch, lr)`` (or ``schedule(epoch)``) at the start of each epoch.

    ``epoch`` counts from 0; ``lr`` is the optimizer's current float learning rate. The result
    must be a finite number >= 0; it is assigned to ``model.optimizer.learning_rate``. At the
    end of the epoch ``logs["learning_rate"]`` records it (Keras). Keras tells the two
    signatures apart by catching TypeError, which also hides TypeErrors raised inside the
    schedule; here the signature is read instead (Keras's way is the fallback for opaque
    callables).

    Example::

        LearningRateScheduler(lambda epoch, lr: lr if epoch < 10 else lr * math.exp(-0.1))
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler needs a function (epoch, lr) -> lr, "
                            f"got {schedule!r}")
        self.schedule = schedule
        self.verbose = check_int("LearningRateScheduler", "verbose", verbose)
        self._nargs = _n_positional(schedule)

    def _call_schedule(self, epoch, lr):
        if self._nargs == 1:
            return self.schedule(epoch)
        if self._nargs is not None:
            return self.schedule(epoch, lr)
        try:
            return self.schedule(epoch, lr)
        except TypeError:
            return self.schedule(epoch)

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = getattr(self.model, "optimizer", None)
        lr = float_learning_rate(optimizer, "LearningRateScheduler")
        new_lr = self._call_schedule(epoch, lr)
        if isinstance(new_lr, bool) or not isinstance(new_lr, (int, float, np.integer,
                                                               np.floating)):
            raise ValueError(f"the schedule of LearningRateScheduler must return a float; "
                             f"at epoch {epoch} it returned {new_lr!r}")
        new_lr = float(new_lr)
        if not math.isfinite(new_lr) or new_lr < 0:
            raise ValueError(f"the schedule of LearningRateScheduler returned learning rate "
                             f"{new_lr!r} at epoch {epoch}; it must be finite and >= 0")
        optimizer.learning_rate = new_lr
        if self.verbose > 0:
            print_msg(self.model, f"\nEpoch {epoch + 1}: LearningRateScheduler setting "
                                  f"learning rate to {new_lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float_learning_rate(self.model.optimizer,
                                                        "LearningRateScheduler")
