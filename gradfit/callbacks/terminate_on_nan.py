"""TerminateOnNaN: stop training when the batch loss becomes NaN or infinite (Keras 3)."""
from __future__ import annotations

import math

from gradfit.callbacks.base import Callback, print_msg


class TerminateOnNaN(Callback):
    """After each training batch, if ``logs["loss"]`` is NaN or +-inf: stop training.

    By default sets ``model.stop_training = True`` (so ``on_train_end`` still runs and
    ``EarlyStopping(restore_best_weights=True)`` still restores the best weights), printing
    ``Epoch 3, step 17: loss is nan, terminating training``. With ``raise_error=True`` it
    raises RuntimeError at once instead (no other callback's ``on_train_end`` runs).
    """

    def __init__(self, raise_error: bool = False):
        super().__init__()
        if not isinstance(raise_error, bool):
            raise TypeError(f"TerminateOnNaN: raise_error must be True or False, "
                            f"got {raise_error!r}")
        self.raise_error = raise_error
        self.epoch = 0
        self.terminated_at = None      # (epoch, step), 0-based, once it fired

    def on_train_begin(self, logs=None):
        self.terminated_at = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        msg = f"Epoch {self.epoch + 1}, step {batch + 1}: loss is {float(loss)}"
        if self.raise_error:
            raise RuntimeError(f"{msg}; terminating training immediately")
        print_msg(self.model, f"{msg}, terminating training")
        self.terminated_at = (self.epoch, batch)
        self.model.stop_training = True
