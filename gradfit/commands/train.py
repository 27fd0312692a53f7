"""`gradfit train`: the main job. Defaults: digits, 128-64 ReLU network, Adam, early stopping
with patience 10 restoring the best weights; writes a run folder."""
from __future__ import annotations

import os

from .. import optimizers
from . import optimizer_flags
from .common import add_data_arguments, build_network, load_data, parse_hidden, run_folder, write_json


def add_arguments(p):
    add_data_arguments(p)
    p.add_argument("--hidden", default="128,64", help="hidden layer widths, e.g. 500,1000,2000 (default 128,64)")
    p.add_argument("--activation", default="relu", help="relu, tanh, sigmoid, leaky_relu, linear (default relu)")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout rate after each hidden layer (default 0)")
    optimizer_flags.add_arguments(p)
    p.add_argument("--batch-size", type=int, default=32, help="global mini-batch size (default 32)")
    p.add_argument("--epochs", type=int, default=100, help="maximum number of epochs (default 100)")
    p.add_argument("--patience", type=int, default=10,
                   help="early stopping patience in epochs on val_loss; 0 disables it (default 10)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="fraction of the training set held out for validation (default 0.1)")
    p.add_argument("--seed", type=int, default=0, help="seed for weights, split, shuffling, dropout (default 0)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--out", default=None, help="run folder (default runs/train-<timestamp>)")
    p.add_argument("--backup", action="store_true",
                   help="back up every epoch to <out>/backup; running the same command again "
                        "resumes from it (needs --out, so that the relaunch finds it)")
    p.add_argument("--verbose", default="auto", help="0 silent, 1 progress bar, 2 one line per epoch, auto")


def run(args):
    from .. import callbacks, datasets, set_random_seed
    from ..parallel import get_comm

    if args.backup and not args.out:
        raise ValueError("--backup needs --out DIR: the backup lives in DIR/backup, and a relaunch "
                         "of the same command finds it there")
    optimizer = optimizer_flags.build(args)     # bad flags fail here, before any output
    comm = get_comm()
    verbose = int(args.verbose) if str(args.verbose).isdigit() else "auto"
    set_random_seed(args.seed)
    hidden = parse_hidden(args.hidden)
    ds = load_data(args)
    (x_tr, y_tr), (x_val, y_val), _ = datasets.train_val_test_split(
        ds.x_train, ds.y_train, val_fraction=args.val_fraction, seed=args.seed,
        stratify=ds.num_classes is not None)
    out_dim = 1 if ds.y_train.ndim == 1 else ds.y_train.shape[1]
    model = build_network(x_tr.shape[1], hidden, args.activation, args.dropout, ds.num_classes, out_dim, args.dtype)
    loss = "sparse_categorical_crossentropy" if ds.num_classes else "mse"
    metrics = ["accuracy"] if ds.num_classes else ["mae"]
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    folder = run_folder(args.out) if comm.rank == 0 else (args.out or "")
    if comm.rank == 0:
        flags = optimizer_flags.declared()
        model.summary()
        write_json(os.path.join(folder, "config.json"), {
            "command": "train", **{k: v for k, v in vars(args).items() if not k.startswith("_")
                                   and not (k in flags and v is None)},
            "dataset": ds.name, "train_examples": len(x_tr), "validation_examples": len(x_val),
            "test_examples": len(ds.x_test), "loss": loss, "metrics": metrics,
            "optimizer": optimizers.serialize(model.optimizer),
            "model": model.get_config(), "mpi_ranks": comm.size})
    cbs = [callbacks.CSVLogger(os.path.join(folder, "history.csv"))]
    if args.patience > 0:
        cbs.insert(0, callbacks.EarlyStopping(patience=args.patience, restore_best_weights=True))
    if args.backup:
        cbs.append(callbacks.BackupAndRestore(os.path.join(folder, "backup")))
    history = model.fit(x_tr, y_tr, batch_size=args.batch_size, epochs=args.epochs,
                        validation_data=(x_val, y_val), callbacks=cbs, verbose=verbose)
    test = model.evaluate(ds.x_test, ds.y_test, batch_size=256, return_dict=True)
    if comm.rank == 0:
        model.save(os.path.join(folder, "model.gfm"))
        write_json(os.path.join(folder, "results.json"), {
            "epochs_run": len(history.history.get("loss", [])),
            "test": test, "final": {k: v[-1] for k, v in history.history.items()}})
        try:
            from ..plotting import plot_history
            plot_history(history.history, os.path.join(folder, "history.png"),
                         title=f"{ds.name}: {x_tr.shape[1]}-{'-'.join(map(str, hidden))}-{model.output_dim}")
        except ImportError as exc:
            print(f"(no plot: {exc})")
        summary = ", ".join(f"{k} {v:.4f}" for k, v in test.items())
        print(f"Test ({len(ds.x_test)} examples): {summary}")
        print(f"Run folder: {folder} (model.gfm, history.csv, history.png, config.json, results.json)")
    return 0
