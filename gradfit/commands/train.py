"""`gradfit train`: the main job. Defaults: digits, 128-64 ReLU network, Adam, early stopping
with patience 10 restoring the best weights; writes a run folder.

Order of work, so that a mistake costs nothing: every flag is checked when parsed, then the
data, the task, the optimizer, the memory needed and the run folder are checked, all before
the first line is printed or a file is written. Every ending (finished, early stop, NaN,
Ctrl-C / SIGTERM) leaves a consistent folder and one final line (`outcome.py`); the exit
status is 0 for a finished run or an early stop, 2 for a bad input, 3 for a NaN stop and 130
for an interrupted run (resumable with ``--backup``).

A second-order optimizer (``--optimizer lm``, ``newton``, ``bfgs``, ...) trains in float64 on
the whole training set, one iteration per epoch, unless ``--batch-size`` and
``--allow-mini-batch`` say otherwise; the memory check counts its n x n matrices
(`gradfit.memory.method_bytes`), and its own stop (converged, mu at mu_max) ends the run as
``optimizer_stop`` (status 0).

Resuming (``--backup`` on a folder holding the backup of an interrupted run) may change only
what does not change the run being resumed: ``--epochs`` (train longer or shorter), ``--patience``,
``--verbose``, ``--data-dir`` (the same files elsewhere) and the optimizer's hyperparameters
(``--learning-rate`` ..., applied from the resumed step on, unless they change the optimizer's
state arrays, e.g. ``amsgrad``). Everything else (data, split, seed, network, optimizer,
batch size, task) must match the backup's run: an error names the setting and both values.
Keras's BackupAndRestore expects the same compile and fit arguments; Lightning's
``ckpt_path`` restores the optimizer including its learning rate; here a changed rate is
applied and recorded in ``config.json`` under ``resumes``.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import warnings

import numpy as np

from .. import optimizers
from ..callbacks import AdaptiveBatchSize, BackupAndRestore, Callback, CSVLogger, EarlyStopping
from ..callbacks.adaptive_batch_size import AUTO, LOG_KEYS
from ..checks import ArgumentError, SpelledError, literal
from ..curvature import InsufficientMemoryError, available_bytes as guard_bytes
from ..datasets.task import TASKS, decide_task
from ..layers.activations import ACTIVATIONS
from ..memory import available_bytes, human_bytes, training_bytes
from ..optimizers.second_order import check_full_batch
from ..parallel import get_comm
from ..plotting import plot_history
from ..saving import read_archive
from ..train.guard import deferred_interrupts
from ..utils import set_random_seed
from . import optimizer_flags
from . import run_folder as folders
from . import train_data
from .common import add_data_arguments, build_network, load_data, parse_hidden, read_json, write_json
from .outcome import final_line, read_outcome, results
from .types import integer, number

#: the exit status of each ending (2 is a bad input, refused before training)
EXIT_STATUS = {"finished": 0, "early_stop": 0, "optimizer_stop": 0, "nan": 3, "interrupted": 130}

#: settings a resume must keep (see the module docstring), by their argparse dest
RESUME_MUST_MATCH = ("data", "labels", "split_seed", "x_key", "y_key", "label_column", "header",
                     "task", "num_classes", "val_fraction", "seed", "hidden", "activation",
                     "dropout", "dtype", "optimizer", "batch_size")


def add_arguments(p):
    add_data_arguments(p, streams=True)
    p.add_argument("--labels", default=None,
                   help="with --data x.npy: the .npy file of targets, one per row (both are read "
                        "batch by batch, never loaded whole)")
    p.add_argument("--task", default="auto", choices=TASKS,
                   help="what to learn: auto decides from the targets (printed first), or "
                        "classification / regression (default auto)")
    p.add_argument("--num-classes", type=integer(2), default=None,
                   help="number of classes, when the labels alone leave it ambiguous")
    p.add_argument("--hidden", default="128,64", help="hidden layer widths, e.g. 500,1000,2000 (default 128,64)")
    p.add_argument("--activation", default="relu", choices=[a for a in ACTIVATIONS if a != "softmax"],
                   help="hidden layers' activation (default relu)")
    p.add_argument("--dropout", type=number(0.0, below=1.0), default=0.0,
                   help="dropout rate after each hidden layer, in [0, 1) (default 0)")
    optimizer_flags.add_arguments(p)
    p.add_argument("--batch-size", type=_batch_size, default=None,
                   help="global mini-batch size, or auto: from 32 grown toward the gradient noise "
                        "scale while training, the learning rate scaled with it (AdaptiveBatchSize; "
                        "default 32; a second-order optimizer: the whole training set, one "
                        "iteration per epoch)")
    p.add_argument("--epochs", type=integer(1), default=100, help="maximum number of epochs (default 100)")
    p.add_argument("--patience", type=integer(0), default=10,
                   help="early stopping patience in epochs on val_loss, restoring the best "
                        "weights; 0 disables it (default 10)")
    p.add_argument("--val-fraction", type=number(0.0, below=1.0), default=0.1,
                   help="fraction of the training set held out for validation, in [0, 1) "
                        "(default 0.1; early stopping needs it > 0)")
    p.add_argument("--seed", type=integer(0), default=0,
                   help="seed for weights, split, shuffling, dropout (default 0)")
    p.add_argument("--dtype", default=None, choices=["float32", "float64"],
                   help="weights' dtype (default float32; float64 for a second-order optimizer, "
                        "which needs it)")
    p.add_argument("--out", default=None, help="run folder (default runs/train-<timestamp>)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace what --out holds (a finished or interrupted run)")
    p.add_argument("--backup", action="store_true",
                   help="back up every epoch to <out>/backup; running the same command again "
                        "resumes from it (needs --out). Without it a backup is written only "
                        "when the run is interrupted (Ctrl-C, SIGTERM)")
    p.add_argument("--verbose", default="auto", choices=["0", "1", "2", "auto"],
                   help="0 silent, 1 progress bar, 2 one line per epoch, auto (default)")


def _check_combinations(args):
    if args.backup and not args.out:
        raise ArgumentError("backup", True, "given with {out}",
                            "the backup lives in <out>/backup, where a relaunch finds it: add "
                            "{out} DIR")
    if args.patience > 0 and args.val_fraction == 0:
        raise ArgumentError("patience", args.patience, "0 when there is no validation set",
                            "early stopping watches val_loss: give {val_fraction} > 0, or "
                            "{patience} 0")


def _batch_size(text):
    """``--batch-size``: an integer >= 1, or "auto"."""
    if text == AUTO:
        return AUTO
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1 or auto, got {text!r}")
    return value


def _first_batch(args, opt, n, ranks) -> int:
    """The batch of the first step; for ``auto`` its options checked against the data and the
    ranks now, before anything is printed (the memory cap is applied by fit)."""
    if isinstance(opt, optimizers.SecondOrderMethod):
        return n if args.batch_size is None else args.batch_size
    if args.batch_size != AUTO:
        return 32 if args.batch_size is None else args.batch_size
    return AdaptiveBatchSize().make_controller(n, ranks, opt).batch_size


def _check_second_order(args, opt, n):
    """What fit would refuse for a second-order method, refused before anything is printed:
    float32, dropout, a batch below the training set unless asked, ``auto``."""
    if not isinstance(opt, optimizers.SecondOrderMethod):
        return
    if args.dtype != "float64":
        raise ArgumentError("dtype", args.dtype, f"float64 for --optimizer {opt.name} (its "
                            "matrices lose most of their digits in float32)", "drop {dtype}")
    if args.dropout > 0:
        raise ArgumentError("dropout", args.dropout, f"0 for --optimizer {opt.name}: it compares "
                            "losses of one function within an iteration", "drop {dropout}")
    if args.batch_size == AUTO:
        raise ArgumentError("batch_size", AUTO, f"a number, or left out (the whole set), for "
                            f"--optimizer {opt.name}")
    check_full_batch(opt.name, args.batch_size, n, opt.allow_mini_batch)


def _check_memory(sizes, args, opt, batch):
    if isinstance(opt, optimizers.SecondOrderMethod):
        return _check_second_order_memory(sizes, args, opt, batch)
    slots = len([k for k in opt.init(np.zeros(1)) if k != "step"])
    need = training_bytes(sizes, batch, slots, args.dtype)
    have = available_bytes()
    if have is not None and need["total"] > have:
        parts = ", ".join(f"{k.replace('_', ' ')} {human_bytes(v)}" for k, v in need.items()
                          if k != "total")
        raise ArgumentError("hidden", args.hidden,
                            f"a network that fits in memory: training "
                            f"{'-'.join(map(str, sizes))} at batch {batch} needs "
                            f"{human_bytes(need['total'])} ({parts}; `gradfit memory "
                            f"{' '.join(map(str, sizes))}`) and {human_bytes(have)} are available",
                            "use smaller {hidden} widths or a smaller {batch_size}")


def _check_second_order_memory(sizes, args, opt, batch):
    """The memory guard with the method's own bytes (its n x n matrices) on top of the
    network's weights, gradient and activations at the full batch."""
    n = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    base = training_bytes(sizes, batch, 0, "float64")["total"]
    have = guard_bytes()     # $GRADFIT_MEMORY_AVAILABLE, else MemAvailable (the guard's)
    try:
        opt.check_memory(n, network="-".join(map(str, sizes)), examples=batch,
                         outputs=sizes[-1], available=None if have is None else max(have - base, 0))
    except InsufficientMemoryError as exc:
        raise ArgumentError("optimizer", opt.name, "an optimizer whose matrices fit in memory",
                            literal(f"{exc} (the network itself takes {human_bytes(base)} "
                                    "more)")) from None


def _settings(args) -> dict:
    """The command's settings for config.json (optimizer flags not given are left out: the
    optimizer's own defaults are in ``optimizer_config``)."""
    unset = {k for k in optimizer_flags.declared() if getattr(args, k, None) is None}
    return {k: v for k, v in vars(args).items() if not k.startswith("_") and k not in unset}


def _on_rank0(comm, fn):
    """``fn()`` on rank 0; its error (a bad argument, bad data) is raised on every rank (no
    rank is left waiting)."""
    failure = None
    result = None
    if comm.rank == 0:
        try:
            result = fn()
        except SpelledError as exc:
            failure = exc
    failure = comm.bcast_obj(failure, root=0) if comm.size > 1 else failure
    if failure is not None:
        raise failure
    return comm.bcast_obj(result, root=0) if comm.size > 1 else result


class _RunStart(Callback):
    """Runs after `BackupAndRestore` restored a run (both ``run_last``): applies the learning
    rate the resuming command asked for, then writes config.json, so that a resume refused
    while restoring leaves config.json as it was."""

    run_last = True

    def __init__(self, write_config, learning_rate=None):
        super().__init__()
        self.write_config, self.learning_rate = write_config, learning_rate

    def on_train_begin(self, logs=None):
        if self.learning_rate is not None:
            self.model.optimizer.learning_rate = self.learning_rate
        self.write_config()


def _resume_changes(folder, args, opt) -> tuple[dict, dict]:
    """(saved config.json, {setting: [old, new]} that the resume changes, where it resumes);
    an error for a setting that must match (see the module docstring)."""
    config = read_json(os.path.join(folder, "config.json"))
    if config is None:
        raise ArgumentError("out", folder, "a run folder with its config.json",
                            "the backup cannot be checked without it: start afresh with "
                            "{overwrite}")
    position = read_archive(os.path.join(folder, folders.BACKUP))[0]["training"]
    epoch, step = position["epoch"], position["step"]
    at = f"epoch {epoch + 1}" + (f", step {step + 1}" if step else "")
    least = epoch + 1
    if args.epochs < least:
        raise ArgumentError("epochs", args.epochs, f"at least {least}: the backup resumes at {at}",
                            f"give {{epochs}} {max(least, config.get('epochs', least))} or more")
    new = _settings(args)
    for key in RESUME_MUST_MATCH:
        if key in config and config[key] != new.get(key):
            raise ArgumentError(key, new.get(key), f"{literal(repr(config[key]))}, as in the run "
                                "being resumed",
                                f"resume with {{{key}}} {literal(config[key])}, or start afresh with "
                                "{overwrite} (or another {out})")
    changed = {k: [config.get(k), new[k]] for k in ("epochs", "patience", "verbose", "data_dir")
               if k in config and config.get(k) != new[k]}
    old_opt = config["optimizer_config"]["config"]
    new_opt = optimizers.serialize(opt)["config"]
    slots_old = sorted(optimizers.deserialize(config["optimizer_config"]).init(np.zeros(1)))
    slots_new = sorted(opt.init(np.zeros(1)))
    if slots_old != slots_new:
        raise ArgumentError("optimizer", args.optimizer, "an optimizer with the backup's state "
                            f"arrays {slots_old}", "resume with the optimizer settings of the "
                            "run being resumed, or start afresh with {overwrite}")
    changed.update({k: [old_opt.get(k), v] for k, v in new_opt.items() if old_opt.get(k) != v})
    return config, changed, at


def _resume_command(args, folder) -> str:
    argv = [a for a in sys.argv[1:]] if sys.argv[1:2] == ["train"] else ["train"]
    if "--backup" not in argv:
        argv.append("--backup")
    if not args.out:
        argv += ["--out", folder]
    return "gradfit " + shlex.join(argv)


def run(args):
    comm = get_comm()
    verbose = int(args.verbose) if args.verbose != "auto" else "auto"
    # 1. Everything checked before anything is printed or written.
    _check_combinations(args)
    hidden = parse_hidden(args.hidden)
    opt = optimizer_flags.build(args)
    set_random_seed(args.seed)
    task, data = _data(args, comm)
    sizes = [data.width, *hidden, task.out_dim]
    second = isinstance(opt, optimizers.SecondOrderMethod)
    args.dtype = args.dtype or ("float64" if second else "float32")
    _check_second_order(args, opt, data.rows[0])
    _check_memory(sizes, args, opt, _first_batch(args, opt, data.rows[0], comm.size))
    folder = args.out or (folders.default_folder() if comm.rank == 0 else None)
    folder = comm.bcast_obj(folder, root=0) if comm.size > 1 else folder
    lock = folders.RunLock(folder, "gradfit " + shlex.join(sys.argv[1:])) if comm.rank == 0 else None
    mode = _on_rank0(comm, lambda: _lock_and_check(lock, folder, args))
    try:
        config, changed, at = None, {}, None
        if mode == "resume":
            config, changed, at = _on_rank0(comm, lambda: _resume_changes(folder, args, opt))
        elif comm.rank == 0 and args.overwrite:
            folders.clear(folder)
        return _train(args, comm, verbose, folder, (mode, config, changed, at), data, task, opt,
                      sizes, lock)
    finally:
        if lock is not None:
            lock.release()


def _data(args, comm):
    """(task, `TrainData`): arrays in memory, or a source streamed from disk (`train_data`)."""
    if not train_data.on_disk(args.data):
        ds = load_data(args)
        task = decide_task(ds.y_train, ds.y_test, args.task, args.num_classes, ds.source_rows,
                           ds.source)
        return task, train_data.in_memory(args, ds, task)
    source, targets = train_data.open_on_disk(args)
    _on_rank0(comm, lambda: train_data.verify(source))   # once, before anything is printed
    return train_data.split_on_disk(args, source, targets)


def _lock_and_check(lock, folder, args) -> str:
    """Check the folder, lock it, check it again (another run may have used it meanwhile)."""
    folders.check_folder(folder, overwrite=args.overwrite, backup=args.backup)
    lock.acquire()
    try:
        return folders.check_folder(folder, overwrite=args.overwrite, backup=args.backup)
    except ArgumentError:
        lock.release()
        raise


def _train(args, comm, verbose, folder, resume, data, task, opt, sizes, lock):
    """Steps 2-4 of `run`, with the folder locked: announce, train, record the outcome.
    ``resume``: (mode "start" / "resume", saved config, changed settings, where it resumes)."""
    mode, config, changed, at = resume
    chief = comm.rank == 0
    model = build_network(data.row_shape, sizes[1:-1], args.activation, args.dropout,
                          task.num_classes, task.out_dim, args.dtype)
    model.compile(optimizer=opt, loss=task.loss, metrics=list(task.metrics))
    # 2. Say what will happen; the configuration is written once a resume is restored.
    if chief:
        model.summary()
        print(f"Task: {task.describe()}")
        if data.streamed:
            print(f"Data: {args.data}, streamed from disk ({' / '.join(map(str, data.rows))} rows "
                  f"train / validation / test, read batch by batch)")
        if getattr(lock, "note", None):
            print(f"Run folder: {lock.note}")
        if mode == "resume":
            said = "; ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items())
            print(f"Run folder: {folder} (resuming at {at} from its backup"
                  + (f"; changed: {said}" if said else "") + ")")
        else:
            print(f"Run folder: {folder}" + (" (replacing what it held)" if args.overwrite else ""))
    record = {"command": "train", **_settings(args), "dataset": data.name,
              "decided_task": task.describe(), "train_examples": data.rows[0],
              "validation_examples": data.rows[1], "test_examples": data.rows[2],
              "streamed": data.streamed, "loss": task.loss, "metrics": list(task.metrics),
              "optimizer_config": optimizers.serialize(model.optimizer), "model": model.get_config(),
              "mpi_ranks": comm.size, "resumes": []}
    if mode == "resume":
        record["resumes"] = config.get("resumes", []) + [
            {"at": at, "time": time.strftime("%Y-%m-%d %H:%M:%S"),
             "changed": {k: list(v) for k, v in changed.items()}}]

    def write_config():
        if chief:
            write_json(os.path.join(folder, "config.json"), record)
    # 3. Train: Ctrl-C / SIGTERM end the run after a whole step (gradfit.train.guard).
    early = EarlyStopping(patience=args.patience, restore_best_weights=True) if args.patience else None
    auto = AdaptiveBatchSize() if args.batch_size == AUTO else None    # before CSVLogger: its
    cbs = [c for c in (auto, early, CSVLogger(os.path.join(folder, "history.csv")))  # logs go in
           if c is not None]
    cbs.append(BackupAndRestore(os.path.join(folder, "backup"),
                                save_freq="epoch" if args.backup else False))
    cbs.append(_RunStart(write_config, changed.get("learning_rate", [None, None])[1]))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # a NaN stop is printed once, above
        history = model.fit(*data.train, batch_size=args.batch_size, epochs=args.epochs,
                            validation_data=data.val, callbacks=cbs, verbose=verbose)
        # 4. The outcome: the model (atomically), results.json, the figure, one final line;
        #    a Ctrl-C now waits until they are written.
        with deferred_interrupts() as signals:
            outcome = read_outcome(model, history, early, probe=data.probe())
            test = model.evaluate(*data.test, batch_size=256, return_dict=True) \
                if outcome.usable else None
            if chief:
                _write_outcome(model, folder, outcome, history, test, data.name, sizes, args)
    if signals and chief:
        print(f"({signals[0]} received after training ended: the run's files were written whole)")
    return EXIT_STATUS[outcome.ended]


def _write_outcome(model, folder, outcome, history, test, name, sizes, args):
    if outcome.usable:
        model.save(os.path.join(folder, "model.gfm"))
    write_json(os.path.join(folder, "results.json"), results(outcome, history.history, test))
    if history.history.get("loss"):
        plot_history({k: v for k, v in history.history.items() if k not in LOG_KEYS},
                     os.path.join(folder, "history.png"),
                     title=f"{name}: {'-'.join(map(str, sizes))}",
                     mark=outcome.kept_epoch, mark_label=outcome.kept_text())
    resume = _resume_command(args, folder) if outcome.ended == "interrupted" else None
    print(final_line(outcome, test, folder, resume))
