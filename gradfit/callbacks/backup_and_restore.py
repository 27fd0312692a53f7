"""BackupAndRestore: resumable training, bit for bit."""
from __future__ import annotations

import os
import shutil

import numpy as np

from ..datasets import check_same_source
from ..saving import CorruptFileError, model_payload, read_archive, restore_payload, write_archive
from ..checks import check_int
from .base import Callback


class BackupAndRestore(Callback):
    """``BackupAndRestore(backup_dir, save_freq="epoch", delete_checkpoint=True)``, as Keras 3.

    Saves, atomically (`gradfit.saving`), everything a run needs to continue exactly: the flat
    weights, the optimizer state and the run's `TrainState` snapshot (epoch, step, rows of the
    epoch consumed, the random generator now and at the epoch's start, the partial epoch's
    sums, every callback's state). A `fit` killed at any point and run again with the same
    arguments resumes from the last backup and finishes with bit-identical weights to an
    uninterrupted run.

    `save_freq`: "epoch" (at every epoch end), an integer N (also every N optimizer steps,
    mid-epoch) or False (only when the run is interrupted: Keras's value for preemption
    checkpointing). Whatever `save_freq`, a run stopped by Ctrl-C or SIGTERM
    (`gradfit.train.guard`) writes a backup at the step where it stopped and keeps it, so that
    running the same `fit` again resumes there. Otherwise the backup is deleted when training
    ends, unless ``delete_checkpoint=False``. Only rank 0 writes; every rank reads the same file
    on resume (a shared folder on clusters).

    An ordinary callback: it writes at ``on_epoch_end`` / ``on_train_batch_end`` and restores at
    ``on_train_begin``, reading ``model.train_state``. It runs after every other callback
    (``run_last``), so that what it saves and restores is every callback's state after the
    same hook.
    """

    FILE = "backup.gfm"
    run_last = True

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError("BackupAndRestore needs a backup_dir")
        if save_freq not in ("epoch", False):
            save_freq = check_int("save_freq", save_freq, 1, owner="BackupAndRestore",
                                  fix='or "epoch", or False for backups only when interrupted')
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = delete_checkpoint
        self.path = os.path.join(self.backup_dir, self.FILE)
        self._steps = 0

    # -- saving ---------------------------------------------------------------------------------
    def _write(self):
        model = self.model
        snapshot = model.train_state.snapshot(model.comm)    # collective: every rank takes part
        if model.comm.rank != 0:
            return
        meta, arrays = model_payload(model)
        meta["training"] = _split_arrays(snapshot, arrays, "state")
        write_archive(self.path, meta, arrays)

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        every = self.save_freq not in ("epoch", False) and self._steps % self.save_freq == 0
        if every or self._interrupted():
            self._write()

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq is not False:
            self._write()

    def _interrupted(self) -> bool:
        return self.model.train_state.stop_reason == "interrupted"

    # -- restoring ------------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        """Load the backup if there is one: weights, optimizer state and the run's position."""
        self._steps = 0
        if not os.path.exists(self.path):
            return
        model = self.model
        try:
            meta, arrays = read_archive(self.path)
            # other data: refused before the weights change (the backup stays as it is)
            check_same_source(meta["training"].get("source"), model.train_state.source)
            restore_payload(model, meta, arrays)
        except CorruptFileError as exc:
            raise CorruptFileError(f"{exc}. The backup of an interrupted run is unusable: delete "
                                   f"{self.backup_dir} to start training afresh") from None
        # ReduceLROnPlateau / LearningRateScheduler may have changed the rate since compile
        saved_lr = (meta.get("compile") or {}).get("optimizer", {}).get("config", {}).get("learning_rate")
        if isinstance(saved_lr, (int, float)):
            model.optimizer.learning_rate = float(saved_lr)
        model.train_state.restore(_join_arrays(meta["training"], arrays), model.comm.rank)

    def on_train_end(self, logs=None):
        if self._interrupted():     # the run did not end: keep the backup to resume it
            return
        if self.delete_checkpoint and self.model.comm.rank == 0 and os.path.isdir(self.backup_dir):
            shutil.rmtree(self.backup_dir, ignore_errors=True)


def _split_arrays(obj, arrays, prefix):
    """Replace numpy arrays inside a JSON-like object by references into `arrays`."""
    if isinstance(obj, np.ndarray):
        key = f"{prefix}"
        arrays[key] = obj
        return {"__array__": key}
    if isinstance(obj, dict):
        return {k: _split_arrays(v, arrays, f"{prefix}/{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_split_arrays(v, arrays, f"{prefix}/{i}") for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _join_arrays(obj, arrays):
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return arrays[obj["__array__"]]
        return {k: _join_arrays(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join_arrays(v, arrays) for v in obj]
    return obj
