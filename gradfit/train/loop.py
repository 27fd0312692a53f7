"""The one training loop: mini-batch gradient descent over epochs, with callbacks.

Read `fit` top to bottom; its numbered steps are the whole procedure. The position of the run
lives in one `TrainState` (``model.train_state``) that the loop advances and callbacks read;
one step is `train_step`. Backends (numpy/cupy) and data parallelism (MPI) vary below it and
never duplicate it.
"""
from __future__ import annotations

import numpy as np

from ..backend import xp
from ..callbacks.adaptive_batch_size import with_adaptive_batch_size
from ..callbacks.base import print_msg
from ..callbacks.callback_list import CallbackList
from ..checks import check_int
from ..utils import get_rng_state, rng, set_rng_state
from .batching import check_batch_size, next_batch, rank_slice, steps_per_epoch
from .evaluation import evaluate
from .guard import guarded_run
from . import second_order
from .step import train_step


def fit(model, x, y, *, batch_size=None, epochs=1, verbose="auto", callbacks=None,
        validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0,
        drop_remainder=True):
    """Train `model` on (x, y) by mini-batch gradient descent; return a `History`.

    Batches follow the lecture: each epoch reshuffles and cuts the data into disjoint batches
    of equal size `batch_size` (``n % batch_size`` examples, different ones each epoch, sit
    the epoch out); ``drop_remainder=False`` adds Keras's final partial batch instead. Under
    MPI every rank draws the same permutation and takes a 1/N slice of each global batch;
    one Allreduce sums the flat gradient buffer, and every rank takes the same step.
    ``batch_size="auto"``: an `AdaptiveBatchSize` callback (the one in `callbacks`, else a
    default one) sets the next step's global batch and learning-rate factor from the gradient
    noise scale; the permutation is consumed in order, so the batches of an epoch stay disjoint.

    ``batch_size=None`` is Keras's 32, except for a second-order optimizer ("lm", "bfgs",
    ...): the whole training set, so that one epoch is one full-batch iteration
    (`gradfit.train.second_order`).

    `validation_split` takes the LAST fraction of (x, y) before shuffling, as Keras.
    History holds per-epoch ``loss``, each metric, ``val_*`` and ``learning_rate`` (LM: ``mu``).
    """
    comm = model.comm
    # 1. Check everything before any work is done.
    x = model.check_inputs(x)
    model.prepare(x)
    y = model.check_targets(y, len(x))
    x, y, val = _split_validation(model, x, y, validation_split, validation_data)
    n = len(x)
    ranks = comm.size
    if second_order.is_second_order(model.optimizer):   # full batch; uneven rank shares are fine
        batch_size, ranks = second_order.prepare(model, x, y, batch_size, callbacks), 1
    callbacks, adaptive = with_adaptive_batch_size(callbacks, batch_size)
    if adaptive is None:
        batch_size = check_batch_size(32 if batch_size is None else batch_size, n, ranks)
        steps = steps_per_epoch(n, batch_size, drop_remainder)
    else:      # the first batch; the callback chooses the next ones, so the steps per epoch vary
        batch_size, steps = adaptive.prepare(model, n), None
    _check_epochs(epochs, initial_epoch)
    x, y = xp().asarray(x), xp().asarray(y)

    # 2. The run's state: the optimizer state carries over; the position starts at
    #    initial_epoch, unless a callback (BackupAndRestore) restores a run in on_train_begin.
    state = model.train_state
    state.start(initial_epoch, batch_size, len(model.metrics))
    state.init_optimizer(model)
    state.want_grad_norms, state.grad_norms = False, None
    model.stop_training = False
    cbs = CallbackList(callbacks, add_history=True, add_progbar=verbose not in (0, False),
                       model=model, verbose=verbose, epochs=epochs, steps=steps)
    state.callbacks = cbs
    cbs.on_train_begin()
    if verbose not in (0, False):
        _announce(model, n, batch_size, steps, drop_remainder, val, state, adaptive)

    # Ctrl-C / SIGTERM stop after a whole step; a frozen or dead rank ends the job.
    with guarded_run(model, state) as kick:
        while state.epoch < epochs:
            # 3. This epoch's batches: one permutation, the same on every rank.
            perm = _permutation(n, shuffle, state)
            cbs.on_epoch_begin(state.epoch)
            while (batch := next_batch(perm, state.seen, state.batch_size, drop_remainder)) is not None:
                cbs.on_train_batch_begin(state.step)
                # 4-7. This rank's slice; forward, backward, Allreduce, finite check, update.
                idx, offset = rank_slice(batch, comm.rank, comm.size)
                result = train_step(model, state, x[idx], y[idx], len(batch), offset)
                if result is None:         # a non-finite loss: nothing was applied
                    break
                state.finish_step(len(batch), len(idx), *result)
                kick()
                cbs.on_train_batch_end(state.step - 1, {"loss": state.sums.loss})
                if state.stop_reason == "interrupted" or model.stop_training:
                    break                  # a callback's stop: the epoch still ends (Keras 3)
            if state.stop_reason in ("nan", "interrupted"):
                break
            # 8. End of epoch: exact training and validation metrics; callbacks decide.
            logs = state.sums.logs(model)
            if val is not None:
                logs.update(evaluate(model, val[0], val[1], batch_size, prefix="val_"))
            logs.update(second_order.optimizer_logs(model, state))   # learning_rate (LM: mu)
            state.last_logs = logs
            state.finish_epoch()
            cbs.on_epoch_end(state.epoch - 1, logs)
            if model.stop_training:
                if state.stop_reason is None:    # else "optimizer": the method's own stop
                    state.stop("callback")
                break

    # 9. The end: callbacks may restore the best weights and remove their backup.
    cbs.on_train_end(state.last_logs)
    return cbs.history


def _permutation(n, shuffle, state):
    """This epoch's permutation of the n rows; records the RNG state it is drawn from.

    A fresh epoch draws from the generator as it stands. A run resumed mid-epoch has the saved
    state of the epoch's start: the same permutation is drawn again from it, and the generator
    then continues from where the backup left it (dropout masks)."""
    if state.epoch_rng_state is None:
        state.epoch_rng_state = get_rng_state()
        return rng().permutation(n) if shuffle else np.arange(n)
    now = get_rng_state()
    set_rng_state(state.epoch_rng_state)
    perm = rng().permutation(n) if shuffle else np.arange(n)
    set_rng_state(now)
    return perm


def _announce(model, n, batch_size, steps, drop_remainder, val, state, adaptive=None):
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
    if state.epoch or state.step:
        where = f"epoch {state.epoch + 1}" + (f", step {state.step + 1}" if state.step else "")
        print_msg(model, f"Resuming at {where} from the backup")
    if (said := second_order.announcement(model, n, batch_size)) is not None:
        ranks = f"; {comm.size} MPI ranks, each a 1/{comm.size} share" if comm.size > 1 else ""
        print_msg(model, f"Training on {n} examples{vtxt}: {said}{ranks}")
        return
    if adaptive is not None:
        ranks = f"; {comm.size} MPI ranks, each a 1/{comm.size} slice" if comm.size > 1 else ""
        print_msg(model, f"Training on {n} examples{vtxt}: {adaptive.describe()}{ranks}")
        return
    print_msg(model, f"Training on {n} examples{vtxt}: {steps} batches of {batch_size} per epoch "
                     f"({how}){ranks}")


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
    check_int("epochs", epochs, 0)
    check_int("initial_epoch", initial_epoch, 0)
