"""Pieces shared by the CLI subcommands: data loading, network building, run folders."""
from __future__ import annotations

import json
import os
import time

import numpy as np


def add_data_arguments(p):
    p.add_argument("--data", default="digits",
                   help="digits (bundled, offline), mnist, fashion-mnist, or a .npz/.csv file "
                        "(default: digits). MNIST files are read from $GRADFIT_DATA/mnist/ or the user cache")
    p.add_argument("--data-dir", default=None, help="folder holding mnist/ and fashion-mnist/ (overrides $GRADFIT_DATA)")
    p.add_argument("--split-seed", type=int, default=0,
                   help="seed of the train/test split for data without its own test set (digits, "
                        "files); keep it equal between train and evaluate (default 0)")


def load_data(args):
    from .. import datasets
    return datasets.load(args.data, seed=args.split_seed, data_dir=args.data_dir)


def parse_hidden(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()] if text else []
    except ValueError:
        raise ValueError(f"--hidden must be comma-separated layer widths like 500,1000,2000, got {text!r}") from None
    if any(s <= 0 for s in sizes):
        raise ValueError(f"--hidden widths must be positive, got {text!r}")
    return sizes


def build_network(input_dim, hidden, activation, dropout, num_classes, out_dim, dtype="float32"):
    """Input -> [Dense(h, activation) (+ Dropout)]* -> softmax (classes) or linear output."""
    from .. import Dense, Dropout, Input, Sequential
    layers = [Input(shape=(input_dim,))]
    for h in hidden:
        layers.append(Dense(h, activation=activation,
                            kernel_initializer="he_uniform" if activation == "relu" else "glorot_uniform"))
        if dropout:
            layers.append(Dropout(dropout))
    if num_classes:
        layers.append(Dense(num_classes, activation="softmax"))
    else:
        layers.append(Dense(out_dim))
    return Sequential(layers, dtype=dtype)


def run_folder(out, prefix="train") -> str:
    """`out` or runs/<prefix>-<timestamp>, created."""
    folder = out or os.path.join("runs", f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}")
    os.makedirs(folder, exist_ok=True)
    return folder


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, default=lambda o: o.item() if isinstance(o, np.generic) else str(o))
        f.write("\n")
    os.replace(tmp, path)
