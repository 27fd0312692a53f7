"""Pieces shared by the CLI subcommands: data loading, network building, run folders."""
from __future__ import annotations

import json
import math
import os
import time

import numpy as np

from .. import datasets
from ..layers import Dense, Dropout, Flatten, Input
from ..model import Sequential
from .types import integer


def add_data_arguments(p, streams: bool = False):
    more = (", a packed directory (gradfit data pack) or x.npy with --labels y.npy, both "
            "streamed from disk batch by batch") if streams else ""
    p.add_argument("--data", default="digits",
                   help=f"digits (bundled, offline), mnist, fashion-mnist, a .npz/.csv file{more} "
                        "(default: digits). MNIST files are read from $GRADFIT_DATA/mnist/ or the "
                        "user cache")
    p.add_argument("--data-dir", default=None, help="folder holding mnist/ and fashion-mnist/ (overrides $GRADFIT_DATA)")
    p.add_argument("--split-seed", type=integer(0), default=0,
                   help="seed of the train/test split for data without its own test set (digits, "
                        "files); keep it equal between train and evaluate (default 0)")
    p.add_argument("--x-key", default=None, help="a .npz file's array of features (default x)")
    p.add_argument("--y-key", default=None, help="a .npz file's array of targets (default y)")
    p.add_argument("--label-column", default=None,
                   help="a .csv file's target column: an index (default -1, the last) or a "
                        "header name")
    p.add_argument("--header", default=None, choices=["auto", "true", "false"],
                   help="whether a .csv file's first line is a header (default auto)")


def _file_options(args) -> dict:
    """The loader options the flags give (only those given, so that defaults stay the loader's)."""
    options = {}
    for key in ("x_key", "y_key"):
        if getattr(args, key, None) is not None:
            options[key] = getattr(args, key)
    column = getattr(args, "label_column", None)
    if column is not None:
        options["label_column"] = int(column) if column.lstrip("-").isdigit() else column
    header = getattr(args, "header", None)
    if header is not None:
        options["header"] = {"auto": "auto", "true": True, "false": False}[header]
    return options


def load_data(args):
    return datasets.load(args.data, seed=args.split_seed, data_dir=args.data_dir,
                         **_file_options(args))


def parse_hidden(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()] if text else []
    except ValueError:
        raise ValueError(f"--hidden must be comma-separated layer widths like 500,1000,2000, got {text!r}") from None
    if any(s <= 0 for s in sizes):
        raise ValueError(f"--hidden widths must be positive, got {text!r}")
    return sizes


def build_network(input_dim, hidden, activation, dropout, num_classes, out_dim, dtype="float32",
                  init="auto"):
    """Input -> [Dense(h, activation) (+ Dropout)]* -> softmax (classes) or linear output.

    ``input_dim``: the width of an input row, or its shape (rows of several axes, such as
    packed 28 x 28 images, enter through a Flatten). ``init``: the hidden layers' kernel
    initializer; "auto" is he_uniform for relu, glorot_uniform otherwise (the output layer's is
    glorot_uniform, Keras's default)."""
    if init == "auto":
        init = "he_uniform" if activation == "relu" else "glorot_uniform"
    shape = tuple(input_dim) if isinstance(input_dim, (tuple, list)) else (int(input_dim),)
    layers = [Input(shape=shape)] + ([Flatten()] if len(shape) > 1 else [])
    for h in hidden:
        layers.append(Dense(h, activation=activation, kernel_initializer=init))
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
    """Write ``obj`` as JSON atomically; NaN / inf become null (JSON has neither)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(jsonable(obj), f, indent=2, allow_nan=False, default=str)
        f.write("\n")
    os.replace(tmp, path)


def read_json(path):
    """The JSON object of ``path``, or None when there is no such file."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def jsonable(obj):
    """``obj`` with numpy scalars as Python numbers and NaN / inf floats as None."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
