"""ModelCheckpoint: save the model every epoch (or N batches), or only when it improves."""
from __future__ import annotations

import os

import numpy as np

from gradfit.callbacks.base import MonitorCallback, check_int, is_chief, print_msg


class ModelCheckpoint(MonitorCallback):
    """``model.save(path)`` at the end of each epoch (Keras 3's rules).

    ``filepath`` may hold format fields filled from ``epoch`` (1-based) and the logs, e.g.
    ``"ckpt-{epoch:02d}-{val_loss:.3f}.gradfit"``; missing folders are created. With
    ``save_best_only=True`` the model is saved only when ``logs[monitor]`` improves on the best
    so far (strictly; ``initial_value_threshold`` is the first value to beat); if the monitor is
    missing from the logs a warning is given and the model is saved anyway (Keras). Unlike
    EarlyStopping, ``best`` is not reset by ``on_train_begin`` (Keras).

    ``save_freq="epoch"`` or an int N: save after every N training batches instead (the
    ``{batch}`` field is then available). ``save_weights_only=True`` calls
    ``model.save_weights(path)``. Every rank takes the same decision; only rank 0 writes.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        super().__init__(monitor, mode, baseline=initial_value_threshold)
        owner = "ModelCheckpoint"
        if not isinstance(filepath, (str, os.PathLike)):
            raise TypeError(f"{owner}: filepath must be a path, got {filepath!r}")
        self.filepath = os.fspath(filepath)
        self.verbose = check_int(owner, "verbose", verbose)
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        if save_freq != "epoch":
            save_freq = check_int(owner, "save_freq ('epoch' or a number of batches)",
                                  save_freq, minimum=1)
        self.save_freq = save_freq
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = None
        self._current_epoch = 0
        self.last_saved = None        # path of the last file written (on every rank)

    def set_model(self, model):
        super().set_model(model)
        method = "save_weights" if self.save_weights_only else "save"
        if model is not None and not callable(getattr(model, method, None)):
            raise TypeError(f"ModelCheckpoint calls model.{method}(path), which "
                            f"{type(model).__name__} does not have")

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        if self._last_batch_seen is None or batch <= self._last_batch_seen:
            self._batches_seen_since_last_saving += batch + 1
        else:
            self._batches_seen_since_last_saving += batch - self._last_batch_seen
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            self._save(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, None, logs)

    def _path(self, epoch, batch, logs) -> str:
        fields = dict(logs or {})
        fields["epoch"] = epoch + 1
        if batch is not None and "batch" not in fields:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(**fields)
        except (KeyError, IndexError) as e:
            raise KeyError(f"ModelCheckpoint cannot fill filepath {self.filepath!r}: no "
                           f"field {e}; available: {', '.join(sorted(fields))}") from None

    def _should_save(self, epoch, logs, path) -> bool:
        if not self.save_best_only:
            if self.verbose > 0:
                print_msg(self.model, f"\nEpoch {epoch + 1}: saving model to {path}")
            return True
        current = (logs or {}).get(self.monitor)
        if current is None:
            self._monitor_value(logs, "Saving the best model is")
            return True
        if np.ndim(current) > 0:
            return True          # Keras: a non-scalar monitor falls back to saving always
        best_str = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print_msg(self.model, f"\nEpoch {epoch + 1}: {self.monitor} improved from "
                                      f"{best_str} to {current:.5f}, saving model to {path}")
            self.best = current
            return True
        if self.verbose > 0:
            print_msg(self.model, f"\nEpoch {epoch + 1}: {self.monitor} did not improve "
                                  f"from {best_str}")
        return False

    def _save(self, epoch, batch, logs):
        path = self._path(epoch, batch, logs)
        if not self._should_save(epoch, logs, path):
            return
        if os.path.isdir(path):
            raise IsADirectoryError(f"ModelCheckpoint filepath {path!r} is a directory; "
                                    "give a file name such as 'best.gradfit'")
        if is_chief(self.model):
            folder = os.path.dirname(path)
            if folder:
                os.makedirs(folder, exist_ok=True)
            if self.save_weights_only:
                self.model.save_weights(path)
            else:
                self.model.save(path)
        self.last_saved = path

    def get_state(self) -> dict:
        return {"best": self.best, "batches_seen": self._batches_seen_since_last_saving,
                "last_batch_seen": self._last_batch_seen, "last_saved": self.last_saved}

    def set_state(self, state: dict) -> None:
        self.best = None if state["best"] is None else float(state["best"])
        self._batches_seen_since_last_saving = int(state["batches_seen"])
        lb = state["last_batch_seen"]
        self._last_batch_seen = None if lb is None else int(lb)
        self.last_saved = state["last_saved"]
