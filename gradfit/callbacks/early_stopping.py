"""EarlyStopping with exactly Keras 3's semantics (``keras/src/callbacks/early_stopping.py``)."""
from __future__ import annotations

from gradfit.callbacks.base import MonitorCallback, check_int, check_number, print_msg, to_host


class EarlyStopping(MonitorCallback):
    """Stop training when ``monitor`` has stopped improving.

    At the end of epoch ``e`` (0-based), with ``current = logs[monitor]``:

    1. ``current`` missing (a warning lists the available keys) or ``e < start_from_epoch``:
       nothing happens - the epoch is not counted.
    2. ``restore_best_weights`` and no weights kept yet: keep this epoch's weights.
    3. ``wait += 1``.
    4. If ``current`` improves on ``best`` (strictly, by more than ``min_delta``; the first
       monitored value always does): ``best = current``, ``best_epoch = e``, keep the weights;
       ``wait = 0`` only if ``current`` also improves on ``baseline`` (when one is given).
    5. Else, if ``wait >= patience`` and ``e > 0``: ``stopped_epoch = e``, stop training.

    So with a baseline that is never beaten, training stops after ``patience`` monitored epochs
    and the best of those is restored. ``restore_best_weights`` sets the best weights at the end
    of training **whether or not** it stopped early. ``on_train_begin`` resets wait, best,
    stopped_epoch, best_epoch and the kept weights, so one instance serves several fits.

    Args:
        monitor: logged quantity, default ``"val_loss"``.
        min_delta: smallest change counted as an improvement (>= 0; its sign follows mode).
        patience: epochs without improvement before stopping (int >= 0).
        verbose: 0 silent, 1 prints when it stops and when it restores.
        mode: ``"auto"`` (min for losses and errors, max for accuracy/AUC/...), ``"min"``, ``"max"``.
        baseline: value to beat; epochs that do not beat it keep counting towards patience.
        restore_best_weights: set the weights of ``best_epoch`` at the end of training.
        start_from_epoch: epochs of warm-up that are not monitored at all.

    Example::

        model.fit(x, y, epochs=100, validation_data=(xv, yv),
                  callbacks=[EarlyStopping(patience=10, restore_best_weights=True)])
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience = check_int("EarlyStopping", "patience", patience)
        self.verbose = check_int("EarlyStopping", "verbose", verbose)
        self.start_from_epoch = check_int("EarlyStopping", "start_from_epoch", start_from_epoch)
        self.baseline = (None if baseline is None
                         else check_number("EarlyStopping", "baseline", baseline))
        self.best = None             # Keras keeps `baseline` apart from `best` here
        self.restore_best_weights = bool(restore_best_weights)
        self.wait = 0
        self.stopped_epoch = 0
        self.best_epoch = 0
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        current = self._monitor_value(logs, "Early stopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch

        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # restart the count only when beating both the previous best and the baseline
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return

        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print_msg(self.model, f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print_msg(self.model, "Restoring model weights from the end of the best epoch: "
                                      f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def get_state(self) -> dict:
        return {
            "wait": self.wait, "stopped_epoch": self.stopped_epoch, "best": self.best,
            "best_epoch": self.best_epoch,
            "best_weights": None if self.best_weights is None
            else [to_host(w) for w in self.best_weights],
        }

    def set_state(self, state: dict) -> None:
        self.wait = int(state["wait"])
        self.stopped_epoch = int(state["stopped_epoch"])
        self.best = None if state["best"] is None else float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        bw = state["best_weights"]
        self.best_weights = None if bw is None else [to_host(w) for w in bw]
