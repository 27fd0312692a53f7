"""ReduceLROnPlateau with Keras 3's semantics (``keras/src/callbacks/reduce_lr_on_plateau.py``)."""
from __future__ import annotations

import numpy as np

from gradfit.callbacks.base import (
    MonitorCallback, check_int, check_number, float_learning_rate, print_msg,
)


class ReduceLROnPlateau(MonitorCallback):
    """Multiply the learning rate by ``factor`` when ``monitor`` stops improving.

    At the end of epoch ``e``: ``logs["learning_rate"]`` is set to the current rate (so History
    and CSVLogger after it record it); then, if ``current = logs[monitor]`` exists:

    1. in cooldown (``cooldown_counter > 0``): ``cooldown_counter -= 1``, ``wait = 0``;
    2. if ``current`` improves on ``best`` (by more than ``min_delta``): ``best = current``,
       ``wait = 0``;
    3. else, when not in cooldown: ``wait += 1``; if ``wait >= patience`` and
       ``lr > float32(min_lr)``: ``lr = max(lr * factor, min_lr)``,
       ``cooldown_counter = cooldown``, ``wait = 0``.

    ``on_train_begin`` resets best, wait and the cooldown. The new rate is assigned to
    ``model.optimizer.learning_rate`` (a float; a schedule is refused with a clear error).

    Args (Keras defaults): monitor="val_loss", factor=0.1 (0 < factor < 1), patience=10,
    verbose=0, mode="auto", min_delta=1e-4, cooldown=0, min_lr=0.0.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        super().__init__(monitor, mode, min_delta=min_delta)
        owner = "ReduceLROnPlateau"
        factor = check_number(owner, "factor", factor)
        if not 0.0 < factor < 1.0:
            raise ValueError(f"{owner} needs 0 < factor < 1 (new_lr = lr * factor), "
                             f"got factor={factor}")
        self.factor = factor
        self.patience = check_int(owner, "patience", patience)
        self.verbose = check_int(owner, "verbose", verbose)
        self.cooldown = check_int(owner, "cooldown", cooldown)
        self.min_lr = check_number(owner, "min_lr", min_lr, minimum=0.0)
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        optimizer = getattr(self.model, "optimizer", None)
        logs["learning_rate"] = float_learning_rate(optimizer, "ReduceLROnPlateau")
        current = self._monitor_value(logs, "Learning rate reduction is")
        if current is None:
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience and self._reduce(optimizer, epoch):
                self.cooldown_counter = self.cooldown
                self.wait = 0

    def _reduce(self, optimizer, epoch) -> bool:
        old_lr = float_learning_rate(optimizer, "ReduceLROnPlateau")
        if not old_lr > np.float32(self.min_lr):
            return False
        new_lr = max(old_lr * self.factor, self.min_lr)
        optimizer.learning_rate = new_lr
        if self.verbose > 0:
            print_msg(self.model, f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning "
                                  f"rate to {new_lr}.")
        return True

    def get_state(self) -> dict:
        return {"best": self.best, "wait": self.wait, "cooldown_counter": self.cooldown_counter}

    def set_state(self, state: dict) -> None:
        self.best = None if state["best"] is None else float(state["best"])
        self.wait = int(state["wait"])
        self.cooldown_counter = int(state["cooldown_counter"])
