"""The one training loop: mini-batch gradient descent over epochs, with callbacks.

Read `fit` top to bottom; its numbered steps are the whole procedure. The position of the run
lives in one `TrainState` (``model.train_state``) that the loop advances and callbacks read;
one step is `train_step`; the rows of a step come from a `Feed`, which reads them from any
source (arrays, memmaps, packed shards, a PyDataset, a generator) while the previous step
trains. Backends (numpy/cupy), data sources and data parallelism (MPI) vary below it and never
duplicate it.
"""
from __future__ import annotations

from ..callbacks.adaptive_batch_size import with_adaptive_batch_size
from ..callbacks.base import print_msg
from ..callbacks.callback_list import CallbackList
from ..checks import ArgumentError, check_int
from . import data
from .batching import check_batch_size
from .evaluation import evaluate_source
from .feed import Feed
from .guard import guarded_run
from . import second_order
from .step import train_step


def fit(model, x, y=None, *, batch_size=None, epochs=1, verbose="auto", callbacks=None,
        validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0,
        drop_remainder=True, steps_per_epoch=None, validation_steps=None):
    """Train `model` on ``x`` (and ``y``) by mini-batch gradient descent; return a `History`.

    ``x`` is anything `gradfit.datasets.as_source` takes: arrays (with ``y``), a memmap or a
    ``.npy`` path, a packed directory, a `PyDataset`, a generator or iterable of ``(x, y)``
    batches. Every input is read per batch through one path (`gradfit.train.feed`): a batch
    is read, converted to the model's dtype and checked while the previous one trains.

    Batches follow the lecture: each epoch reshuffles the rows and cuts them into disjoint
    batches of equal size ``batch_size`` (None: Keras's 32; ``n % batch_size`` examples,
    different ones each epoch, sit the epoch out); ``drop_remainder=False`` adds Keras's final
    partial batch instead. A PyDataset or a generator brings its own batches (``batch_size``
    stays None). Under MPI every rank draws the same order and reads only its 1/N slice of
    each global batch; one Allreduce sums the flat gradient buffer, and every rank takes the
    same step. ``batch_size="auto"``: an `AdaptiveBatchSize` callback (the one in `callbacks`,
    else a default one) sets the next step's global batch and learning-rate factor from the
    gradient noise scale; the order is consumed in order, so the batches of an epoch stay
    disjoint. ``steps_per_epoch`` (Keras's): epochs of that many steps, cut from a pass over
    the data that continues from one epoch into the next.

    ``batch_size=None`` is Keras's 32, except for a second-order optimizer ("lm", "bfgs",
    ...): the whole training set, so that one epoch is one full-batch iteration
    (`gradfit.train.second_order`).

    ``validation_split`` takes the LAST fraction of the rows before shuffling, as Keras;
    ``validation_data`` is a pair ``(x_val, y_val)`` or any input above (``validation_steps``
    batches of it per evaluation). History holds per-epoch ``loss``, each metric, ``val_*``
    and ``learning_rate`` (LM: ``mu``).
    """
    comm = model.comm
    # 1. Check everything before any work is done: the data become sources bound to the model.
    _check_epochs(epochs, initial_epoch)
    steps_per_epoch = _check_steps("steps_per_epoch", steps_per_epoch)
    validation_steps = _check_steps("validation_steps", validation_steps)
    train = data.open_source(model, x, y)
    train, val = data.validation_source(model, train, validation_data, validation_split)
    for source in (train, val):
        if source is not None:
            data.check_before_training(model, source)
    feed = Feed(model, train, shuffle=shuffle, drop_remainder=drop_remainder,
                steps_per_epoch=steps_per_epoch)
    ranks = comm.size
    if second_order.is_second_order(model.optimizer):   # full batch; uneven rank shares are fine
        batch_size, ranks = second_order.prepare(model, train, batch_size, callbacks), 1
    callbacks, adaptive = with_adaptive_batch_size(callbacks, batch_size)
    batch_size = _first_batch_size(model, train, batch_size, adaptive, steps_per_epoch, ranks)
    steps = feed.steps(None if adaptive is not None else batch_size)

    # 2. The run's state: the optimizer state carries over; the position starts at
    #    initial_epoch, unless a callback (BackupAndRestore) restores a run in on_train_begin.
    state = model.train_state
    state.start(initial_epoch, batch_size, len(model.metrics), source=train.describe())
    state.init_optimizer(model)
    state.want_grad_norms, state.grad_norms = False, None
    model.stop_training = False
    cbs = CallbackList(callbacks, add_history=True, add_progbar=verbose not in (0, False),
                       model=model, verbose=verbose, epochs=epochs, steps=steps)
    state.callbacks = cbs
    cbs.on_train_begin()
    if verbose not in (0, False):
        _announce(model, train, batch_size, steps, drop_remainder, val, state, adaptive)

    # Ctrl-C / SIGTERM stop after a whole step; a frozen or dead rank ends the job.
    with guarded_run(model, state) as kick:
        while state.epoch < epochs:
            # 3. This epoch's batches, read ahead: the next steps of a pass over the data (one
            #    order of all rows, the same on every rank), this rank's rows of each.
            with feed.epoch(state) as batches:
                cbs.on_epoch_begin(state.epoch)
                for batch in batches:
                    cbs.on_train_batch_begin(state.step)
                    # 4-7. Forward, backward, Allreduce, finite check, update.
                    result = train_step(model, state, batch.x, batch.y, batch.size, batch.offset)
                    if result is None:         # a non-finite loss: nothing was applied
                        break
                    state.finish_step(batch.size, len(batch.x), *result)
                    kick()
                    cbs.on_train_batch_end(state.step - 1, {"loss": state.sums.loss})
                    if state.stop_reason == "interrupted" or model.stop_training:
                        break                  # a callback's stop: the epoch still ends (Keras 3)
            if state.stop_reason in ("nan", "interrupted"):
                break
            if feed.ran_dry:                   # a used-up generator: nothing left to train on
                state.stop("exhausted", "the input ran out of data")
                break
            # 8. End of epoch: exact training and validation metrics; callbacks decide.
            logs = state.sums.logs(model)
            if val is not None:
                val_logs, state.val_position = evaluate_source(
                    model, val, batch_size or 32, "val_", validation_steps, state.val_position,
                    lambda k: f"validation after epoch {state.epoch + 1}, batch {k + 1}")
                logs.update(val_logs)
            logs.update(second_order.optimizer_logs(model, state))   # learning_rate (LM: mu)
            state.last_logs = logs
            state.finish_epoch(feed.continues)
            cbs.on_epoch_end(state.epoch - 1, logs)
            if model.stop_training:
                if state.stop_reason is None:    # else "optimizer": the method's own stop
                    state.stop("callback")
                break

    # 9. The end: callbacks may restore the best weights and remove their backup.
    cbs.on_train_end(state.last_logs)
    return cbs.history


def _first_batch_size(model, train, batch_size, adaptive, steps_per_epoch, ranks) -> int:
    """The global batch of the first step, checked against the data and the ``ranks`` it is
    shared by: rows are cut into batches of ``batch_size`` (None: 32); a PyDataset or a
    generator has its own (0 here: the state counts their rows as they come)."""
    if train.unit != "row":
        if batch_size is not None:
            raise ArgumentError("batch_size", batch_size, f"None for {data.describe(train)}",
                                "its batches are its own: drop batch_size (as Keras asks for "
                                "generators and PyDatasets)")
        return 0
    if adaptive is not None:   # the first batch; the callback chooses the next ones
        return adaptive.prepare(model, len(train), steps_per_epoch)
    return check_batch_size(32 if batch_size is None else batch_size, len(train), ranks)


def _announce(model, train, batch_size, steps, drop_remainder, val, state, adaptive=None):
    comm = model.comm
    vtxt = f", validating on {data.describe(val)}" if val is not None else ""
    if state.epoch or state.step:
        where = f"epoch {state.epoch + 1}" + (f", step {state.step + 1}" if state.step else "")
        print_msg(model, f"Resuming at {where} from the backup")
    if train.unit != "row":
        per = f"{steps} batches per epoch" if steps else "every batch it yields, each epoch"
        ranks = (f"; {comm.size} MPI ranks, each a 1/{comm.size} slice of every batch"
                 if comm.size > 1 else "")
        print_msg(model, f"Training on {data.describe(train)}{vtxt}: {per}{ranks}")
        return
    n = len(train)
    if (said := second_order.announcement(model, n, batch_size)) is not None:
        ranks = f"; {comm.size} MPI ranks, each a 1/{comm.size} share" if comm.size > 1 else ""
        print_msg(model, f"Training on {n} examples{vtxt}: {said}{ranks}")
        return
    if adaptive is not None:
        ranks = f"; {comm.size} MPI ranks, each a 1/{comm.size} slice" if comm.size > 1 else ""
        print_msg(model, f"Training on {n} examples{vtxt}: {adaptive.describe()}{ranks}")
        return
    left = n % batch_size
    if left and drop_remainder:
        how = (f"equal-size batches; {left} examples sit each epoch out, different ones every "
               f"epoch; drop_remainder=False adds a final partial batch instead")
    elif left:
        how = f"the last batch of each epoch has {left} examples (drop_remainder=False)"
    else:
        how = "equal-size batches"
    ranks = ""
    if comm.size > 1:
        ranks = f"; {comm.size} MPI ranks x {batch_size // comm.size} examples per rank"
    print_msg(model, f"Training on {n} examples{vtxt}: {steps} batches of {batch_size} per "
                     f"epoch ({how}){ranks}")


def _check_steps(name, steps):
    return None if steps is None else check_int(name, steps, 1)


def _check_epochs(epochs, initial_epoch):
    check_int("epochs", epochs, 0)
    check_int("initial_epoch", initial_epoch, 0)
