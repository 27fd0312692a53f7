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

``--schedule linear|cosine`` decays the rate per step over ``--decay-epochs`` (Keras's
PolynomialDecay / CosineDecay, built once the training rows are known).

Resuming (``--backup``) follows `resume.py`; the checks before training are `train_checks.py`.
"""
from __future__ import annotations

import os
import shlex
import sys
import time
import warnings

import numpy as np

from .. import optimizers
from ..callbacks import AdaptiveBatchSize, BackupAndRestore, CSVLogger, EarlyStopping
from ..callbacks.adaptive_batch_size import AUTO, LOG_KEYS
from ..checks import ArgumentError, SpelledError
from ..datasets.task import TASKS, decide_task
from ..initializers import INITIALIZERS
from ..layers.activations import ACTIVATIONS
from ..parallel import get_comm
from ..plotting import plot_history
from ..train.guard import deferred_interrupts
from ..utils import set_random_seed
from . import optimizer_flags, resume, train_checks, train_data
from . import run_folder as folders
from .common import add_data_arguments, build_network, load_data, parse_hidden, write_json
from .outcome import final_line, read_outcome, results
from .types import integer, number

#: the initializers --init offers (constant kernels would leave the hidden units identical)
HIDDEN_INITS = [name for name in INITIALIZERS if name not in ("zeros", "ones")]
#: the exit status of each ending (2 is a bad input, refused before training)
EXIT_STATUS = {"finished": 0, "early_stop": 0, "optimizer_stop": 0, "nan": 3, "interrupted": 130}

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
    p.add_argument("--init", default="auto", choices=["auto", *HIDDEN_INITS],
                   help="hidden layers' kernel initializer: auto is he_uniform for relu, "
                        "glorot_uniform otherwise; the output layer's is glorot_uniform "
                        "(default auto)")
    p.add_argument("--dropout", type=number(0.0, below=1.0), default=0.0,
                   help="dropout rate after each hidden layer, in [0, 1) (default 0)")
    optimizer_flags.add_arguments(p)
    p.add_argument("--batch-size", type=train_checks.batch_size_type, default=None,
                   help="global mini-batch size, or auto: from 32 grown toward the gradient noise "
                        "scale while training, the learning rate scaled with it (AdaptiveBatchSize; "
                        "default 32; a second-order optimizer: the whole training set, one "
                        "iteration per epoch)")
    p.add_argument("--schedule", default="constant", choices=train_checks.SCHEDULES,
                   help="learning-rate schedule, per step: constant, linear (Keras's "
                        "PolynomialDecay, power 1) or cosine (CosineDecay), from --lr down to "
                        "--lr x --end-lr-fraction over --decay-epochs, then held (default constant)")
    p.add_argument("--decay-epochs", type=number(above=0.0), default=None,
                   help="epochs' worth of steps over which --schedule decays (default: --epochs)")
    p.add_argument("--end-lr-fraction", type=number(0.0, 1.0), default=0.0,
                   help="the rate at the end of the decay, as a fraction of --lr (default 0)")
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


def run(args):
    comm = get_comm()
    verbose = int(args.verbose) if args.verbose != "auto" else "auto"
    # 1. Everything checked before anything is printed or written.
    train_checks.check_combinations(args)
    hidden = parse_hidden(args.hidden)
    opt = optimizer_flags.build(args)
    set_random_seed(args.seed)
    task, data = _data(args, comm)
    sizes = [data.width, *hidden, task.out_dim]
    second = isinstance(opt, optimizers.SecondOrderMethod)
    args.dtype = args.dtype or ("float64" if second else "float32")
    train_checks.check_second_order(args, opt, data.rows[0])
    train_checks.apply_schedule(args, opt, data.rows[0])
    train_checks.check_memory(sizes, args, opt, train_checks.first_batch(args, opt, data.rows[0], comm.size))
    folder = args.out or (folders.default_folder() if comm.rank == 0 else None)
    folder = comm.bcast_obj(folder, root=0) if comm.size > 1 else folder
    lock = folders.RunLock(folder, "gradfit " + shlex.join(sys.argv[1:])) if comm.rank == 0 else None
    mode = _on_rank0(comm, lambda: _lock_and_check(lock, folder, args))
    try:
        config, changed, at = None, {}, None
        if mode == "resume":
            config, changed, at = _on_rank0(comm, lambda: resume.changes(folder, args, opt))
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


def _train(args, comm, verbose, folder, plan, data, task, opt, sizes, lock):
    """Steps 2-4 of `run`, with the folder locked: announce, train, record the outcome.
    ``plan``: (mode "start" / "resume", saved config, changed settings, where it resumes)."""
    mode, config, changed, at = plan
    chief = comm.rank == 0
    model = build_network(data.row_shape, sizes[1:-1], args.activation, args.dropout,
                          task.num_classes, task.out_dim, args.dtype, args.init)
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
    record = {"command": "train", **resume.settings(args), "dataset": data.name,
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
    cbs.append(resume.RunStart(write_config, opt.learning_rate if "learning_rate" in changed
                               else None))
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
    again = resume.resume_command(args, folder) if outcome.ended == "interrupted" else None
    print(final_line(outcome, test, folder, again))
