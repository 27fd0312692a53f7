"""Data-parallel `fit` over every input kind: what each rank trained to and what it read.

usage: [mpiexec -n N] python fit_sources.py DATA RESULTS_DIR

DATA holds packed/ (a packed directory of uint8 rows), x.npy and y.npy (the same rows), written
by tests/test_mpi_fit.py. For each kind (packed, block, memmap, pydataset, generator) a float64
model with dropout trains 2 epochs at a global batch of 24, validating on a packed directory;
every rank writes RESULTS_DIR/rank{r}.npz (the flat weights per kind) and rank{r}.json (rows
read from the source per kind, steps, the history).
"""
import json
import os
import sys

import numpy as np

import gradfit
from gradfit.datasets import as_source
from gradfit.datasets import open as open_packed
from gradfit.parallel import get_comm

data, results = sys.argv[1], sys.argv[2]
comm = get_comm()
B = 24
x, y = np.load(os.path.join(data, "x.npy"), mmap_mode="r"), np.load(os.path.join(data, "y.npy"))
steps = len(x) // B


class Batches(gradfit.utils.PyDataset):
    def __len__(self):
        return steps

    def __getitem__(self, i):
        return x[i * B:(i + 1) * B], y[i * B:(i + 1) * B]


def endless():
    while True:
        for i in range(steps):
            yield x[i * B:(i + 1) * B], y[i * B:(i + 1) * B]


def inputs(kind):
    """(fit's arguments, the source whose reads are counted or None)."""
    packed = os.path.join(data, "packed")
    if kind in ("packed", "block"):
        source = open_packed(packed, order="full" if kind == "packed" else "block",
                             block_rows=60, chunk_rows=7)
        return dict(x=source, batch_size=B), source
    if kind == "memmap":
        source = as_source(os.path.join(data, "x.npy"), y)
        return dict(x=source, batch_size=B), source
    if kind == "pydataset":
        return dict(x=Batches(workers=2)), None
    return dict(x=endless(), steps_per_epoch=steps), None


params, record = {}, {"rank": comm.rank, "size": comm.size}
for kind in ("packed", "block", "memmap", "pydataset", "generator"):
    args, source = inputs(kind)
    val = open_packed(os.path.join(data, "packed")).take(0, 50)
    gradfit.set_random_seed(7)
    model = gradfit.Sequential([gradfit.Input(shape=(x.shape[1],)),
                                gradfit.Dense(16, activation="relu"), gradfit.Dropout(0.25),
                                gradfit.Dense(4, activation="softmax")], dtype="float64")
    model.compile(optimizer=gradfit.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(**args, epochs=2, verbose=0, validation_data=val)
    params[kind] = model.params.copy()
    record[kind] = {"rows_read": getattr(source, "rows_read", None),
                    "val_rows_read": val.rows_read, "steps": int(model.train_state.opt["step"]),
                    "history": history.history}
np.savez(os.path.join(results, f"rank{comm.rank}.npz"), **params)
with open(os.path.join(results, f"rank{comm.rank}.json"), "w") as f:
    json.dump(record, f)
