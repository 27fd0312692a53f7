"""The one training loop: mini-batch gradient descent over epochs, with callbacks.

Read `fit` top to bottom; its numbered steps are the whole procedure. Backends (numpy/cupy)
and data parallelism (MPI) vary below it and never duplicate it.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ..backend import xp
from ..callbacks.base import CallbackList, print_msg
from ..parallel import Watchdog
from ..utils import get_rng_state, rng, set_rng_state
from .batching import check_batch_size, epoch_batches, rank_slice, steps_per_epoch
from .evaluation import evaluate


class EpochSums:
    """Running sums of one epoch: the loss is global (Allreduced every step); metric sums are
    this rank's and are reduced once, at the end of the epoch."""

    def __init__(self, n_metrics, values=None):
        self.values = np.zeros(3 + n_metrics) if values is None else np.asarray(values, dtype=float)

    # values = [sum of batch loss * batch size, examples seen (global), examples seen (local), metrics...]
    def add(self, loss, global_b, local_b, metric_sums):
        self.values[0] += loss * global_b
        self.values[1] += global_b
        self.values[2] += local_b
        self.values[3:] += metric_sums

    @property
    def loss(self):
        return self.values[0] / max(self.values[1], 1)

    def logs(self, model):
        logs = {"loss": float(self.loss)}
        if model.metrics:
            local = np.concatenate([[self.values[2]], self.values[3:]])
            total = model.comm.allreduce_(local)
            for i, (name, _) in enumerate(model.metrics):
                logs[name] = float(total[1 + i] / total[0])
        return logs


def fit(model, x, y, *, batch_size=32, epochs=1, verbose="auto", callbacks=None,
        validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0,
        drop_remainder=True):
    """Train `model` on (x, y) by mini-batch gradient descent; return a `History`.

    Batches follow the lecture: each epoch reshuffles and cuts the data into disjoint batches
    of equal size `batch_size` (``n % batch_size`` examples, different ones each epoch, sit
    the epoch out); ``drop_remainder=False`` adds Keras's final partial batch instead. Under
    MPI every rank draws the same permutation and takes a 1/N slice of each global batch;
    one Allreduce sums the flat gradient buffer, and every rank takes the same step.

    `validation_split` takes the LAST fraction of (x, y) before shuffling, as Keras.
    History holds per-epoch ``loss``, each metric, ``val_*`` and ``learning_rate``.
    """
    from ..callbacks.backup_and_restore import BackupAndRestore

    comm = model.comm
    # 1. Check everything before any work is done.
    x = model.check_inputs(x)
    model._prepare(x)
    y = model.check_targets(y, len(x))
    x, y, val = _split_validation(model, x, y, validation_split, validation_data)
    n = len(x)
    batch_size = check_batch_size(batch_size, n, comm.size)
    _check_epochs(epochs, initial_epoch)
    steps = steps_per_epoch(n, batch_size, drop_remainder)
    callbacks = list(callbacks or [])
    backup = next((c for c in callbacks if isinstance(c, BackupAndRestore)), None)
    # callbacks such as GradientNoiseScale ask for gradient norms before and after the Allreduce
    want_norms = any(getattr(c, "needs_grad_norms", False) for c in callbacks)
    regularized = model.regularized
    cbs = CallbackList(callbacks, add_history=True, add_progbar=verbose not in (0, False),
                       model=model, verbose=verbose, epochs=epochs, steps=steps)
    x, y = xp().asarray(x), xp().asarray(y)
    model.stop_training = False
    model._nan_stop = False
    model.init_optimizer_state()

    # 2. Start, or resume from a backup (weights, optimizer, RNG, epoch, step, callbacks).
    cbs.on_train_begin()
    epoch, first_step, sums = initial_epoch, 0, EpochSums(len(model.metrics))
    epoch_rng = None
    if backup is not None:
        resumed = backup.restore(model, cbs)
        if resumed is not None:
            epoch, first_step, epoch_rng, sums = (resumed["epoch"], resumed["step"],
                                                  resumed["epoch_rng_state"], EpochSums(0, resumed["sums"]))
    if verbose not in (0, False):
        _announce(model, n, batch_size, steps, drop_remainder, val, epoch)

    logs = {}
    # A frozen or dead rank ends the job (GRADFIT_MPI_TIMEOUT seconds) instead of a hang.
    watchdog = Watchdog(comm).start() if comm.size > 1 else None
    while epoch < epochs:
        # 3. This epoch's batches: one permutation, the same on every rank.
        perm, epoch_rng = _permutation(n, shuffle, epoch_rng)
        batches = epoch_batches(perm, batch_size, drop_remainder)
        cbs.on_epoch_begin(epoch)
        for step in range(first_step, steps):
            cbs.on_train_batch_begin(step)
            # 4. Forward and backward over this rank's slice; loss / global batch size.
            batch = batches[step]
            idx, offset = rank_slice(batch, comm.rank, comm.size)
            model.set_shard(offset, global_batch=len(batch))
            loss, y_pred = model.compute_gradients(x[idx], y[idx], denom=len(batch))
            metric_sums = [m.batch_sum(y_pred, y[idx]) for _, m in model.metrics]
            # 5. One Allreduce of the flat gradient buffer, the batch loss in its spare slot.
            g = model.flat.grad_with_loss
            g[-1] = loss
            if want_norms:  # this rank's mean gradient over its own slice, before the sum
                local_sq = float(xp().vdot(model.grads, model.grads)) * (len(batch) / len(idx)) ** 2
            comm.allreduce_(g)
            loss = float(g[-1])
            if want_norms:
                model.grad_norms = {"local_sq": local_sq, "b_local": len(idx), "b_global": len(batch),
                                    "global_sq": float(xp().vdot(model.grads, model.grads))}
            if regularized:  # weight penalties: once, after the sum, the same on every rank
                loss += model.regularization(add_gradients=True)
            # 6. Stop on a non-finite loss, before it reaches the weights.
            if not math.isfinite(loss):
                _stop_on_nan(model, epoch, step, loss)
                break
            # 7. The optimizer step: the same on every rank.
            model.optimizer.update(model.params, model.grads, model.opt_state)
            if watchdog is not None:
                watchdog.kick()
            sums.add(loss, len(batch), len(idx), metric_sums)
            cbs.on_train_batch_end(step, {"loss": sums.loss})
            if backup is not None:
                backup.after_step(model, cbs, epoch, step + 1, epoch_rng, sums.values)
            if model.stop_training:   # a callback may stop mid-epoch; the epoch still ends (Keras 3)
                break
        if model._nan_stop:
            break
        # 8. End of epoch: exact training and validation metrics, callbacks decide.
        logs = sums.logs(model)
        if val is not None:
            logs.update(evaluate(model, val[0], val[1], batch_size, prefix="val_"))
        logs["learning_rate"] = float(model.optimizer.current_learning_rate(model.opt_state["step"]))
        cbs.on_epoch_end(epoch, logs)
        epoch, first_step, epoch_rng, sums = epoch + 1, 0, None, EpochSums(len(model.metrics))
        if backup is not None:
            backup.after_epoch(model, cbs, epoch)
        if model.stop_training:
            break

    # 9. The end: callbacks may restore the best weights; the backup is removed.
    if watchdog is not None:
        watchdog.stop()
    cbs.on_train_end(logs)
    model.set_shard(0, None)
    return cbs.history


def _permutation(n, shuffle, epoch_rng_state):
    """(this epoch's permutation, the RNG state it was drawn from).

    A fresh epoch draws from the generator as it stands. A run resumed mid-epoch passes the
    saved state of the epoch's start: the same permutation is drawn again from it, and the
    generator then continues from where the backup left it (dropout masks)."""
    if epoch_rng_state is None:
        epoch_rng_state = get_rng_state()
        return (rng().permutation(n) if shuffle else np.arange(n)), epoch_rng_state
    now = get_rng_state()
    set_rng_state(epoch_rng_state)
    perm = rng().permutation(n) if shuffle else np.arange(n)
    set_rng_state(now)
    return perm, epoch_rng_state


def _announce(model, n, batch_size, steps, drop_remainder, val, epoch):
    comm = model.comm
    left = n % batch_size
    if left and drop_remainder:
        how = (f"equal-size batches; {left} examples sit each epoch out, different ones every epoch; "
               f"drop_remainder=False adds a final partial batch instead")
    elif left:
        how = f"the last batch of each epoch has {left} examples (drop_remainder=False)"
    else:
        how = "equal-size batches"
    ranks = ""
    if comm.size > 1:
        ranks = f"; {comm.size} MPI ranks x {batch_size // comm.size} examples per rank"
    vtxt = f", validating on {len(val[0])}" if val is not None else ""
    start = f", resuming at epoch {epoch + 1}" if epoch else ""
    print_msg(model, f"Training on {n} examples{vtxt}: {steps} batches of {batch_size} per epoch "
                     f"({how}){ranks}{start}")


def _split_validation(model, x, y, validation_split, validation_data):
    if validation_data is not None:
        if len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (x_val, y_val)")
        xv = model.check_inputs(validation_data[0], "validation x")
        yv = model.check_targets(validation_data[1], len(xv), "validation y")
        if len(xv) == 0:
            raise ValueError("validation_data is empty; pass at least one example or omit it")
        return x, y, (xv, yv)
    if not 0 <= validation_split < 1:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
    if validation_split == 0:
        return x, y, None
    cut = int(len(x) * (1 - validation_split))
    if cut == len(x) or cut == 0:
        raise ValueError(f"validation_split={validation_split} leaves an empty "
                         f"{'validation' if cut == len(x) else 'training'} set of {len(x)} examples")
    return x[:cut], y[:cut], (x[cut:], y[cut:])


def _check_epochs(epochs, initial_epoch):
    for name, v in (("epochs", epochs), ("initial_epoch", initial_epoch)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {v!r}")


def _stop_on_nan(model, epoch, step, loss):
    # Checked only here, not every step: a full pass over the weights per step costs too much.
    if bool(xp().isfinite(model.params).all()):
        state = "this step's update was not applied"
    else:
        state = ("the weights themselves are no longer finite: the previous update overflowed "
                 "(EarlyStopping(restore_best_weights=True) restores the best epoch's weights)")
    msg = (f"training stopped: the loss became {loss} at epoch {epoch + 1}, step {step + 1}; {state}. "
           "Try a smaller learning rate, gradient clipping, or check the data")
    print_msg(model, msg)
    warnings.warn(msg, RuntimeWarning, stacklevel=3)
    model.stop_training = True
    model._nan_stop = True
