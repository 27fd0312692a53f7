"""`gradfit predict MODEL --input FILE --output preds.csv`: predictions of a saved model."""
from __future__ import annotations

import os
import sys

import numpy as np

from ..checks import ArgumentError, literal
from ..datasets import load_csv, load_npz
from ..models import load_model
from .types import integer


def add_arguments(p):
    p.add_argument("model", help="a model file written by model.save / gradfit train (model.gfm)")
    p.add_argument("--input", required=True,
                   help="examples: a .npy array (n, features), a .npz (key x) or a .csv without labels")
    p.add_argument("--output", default="-", help="CSV file for the predictions (default: standard output)")
    p.add_argument("--batch-size", type=integer(1), default=256)


def _read(path):
    if not os.path.isfile(path):
        raise ArgumentError("input", path, "an existing file",
                            f"there is no such file (working directory: {literal(os.getcwd())})")
    if path.endswith(".npy"):
        return np.load(path, allow_pickle=False)
    if path.endswith(".npz"):
        return load_npz(path, x_key="x", y_key=None)[0]
    if path.endswith(".csv"):
        return load_csv(path, label_column=None)[0]
    raise ValueError(f"--input must be a .npy, .npz or .csv file, got {path!r}")


def run(args):
    folder = os.path.dirname(os.path.abspath(args.output)) if args.output != "-" else None
    if folder is not None and not os.path.isdir(folder):
        raise ArgumentError("output", args.output, "a file in an existing folder",
                            f"create {literal(folder)} first, or choose another {{output}}")
    model = load_model(args.model)
    x = _read(args.input)
    y = model.predict(x.reshape(len(x), -1), batch_size=args.batch_size)
    rows = np.column_stack([y.argmax(axis=1), y]) if y.shape[1] > 1 else y
    cols = (["class"] + [f"p{i}" for i in range(y.shape[1])]) if y.shape[1] > 1 else ["prediction"]
    out = sys.stdout if args.output == "-" else open(args.output, "w")
    try:
        np.savetxt(out, rows, delimiter=",", header=",".join(cols), comments="", fmt="%.6g")
    finally:
        if out is not sys.stdout:
            out.close()
    return 0
