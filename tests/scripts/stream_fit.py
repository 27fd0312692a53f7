"""``fit`` over a streaming source with BackupAndRestore; optionally SIGKILLed after a step.

usage: [mpiexec -n N] python stream_fit.py KIND DATA BACKUP OUT KILL_AT [SAVE_FREQ]

KIND: packed | block | memmap | pydataset | generator, read from the folder DATA that
tests/test_resume_streams.py prepares (packed/: a packed directory of uint8 rows, x.npy, y.npy).
The model is float64 (ranks agree to 1e-10) with dropout; 3 epochs of 11 batches of 24 rows.
KILL_AT >= 1: rank 0 sends itself SIGKILL after its KILL_AT-th training step of this launch,
before that step's backup is written; BackupAndRestore(save_freq=SAVE_FREQ, default 4) keeps
the last one. At the end rank 0 writes OUT.npy (the flat weights), OUT.json (the History,
steps trained in this launch, rows read by each rank) and prints DONE.
"""
import json
import os
import sys

import numpy as np

import gradfit
from gradfit.callbacks import BackupAndRestore
from gradfit.datasets import open as open_packed
from gradfit.parallel import get_comm
from kill_at import KillAt

kind, data, backup, out, kill_at = sys.argv[1:6]
save_freq = int(sys.argv[6]) if len(sys.argv) > 6 else 4
kill_at = int(kill_at)
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


if kind in ("packed", "block"):
    source = open_packed(os.path.join(data, "packed"), order="full" if kind == "packed" else "block",
                         block_rows=60, chunk_rows=7)
    args = dict(x=source, batch_size=B)
elif kind == "memmap":
    source = gradfit.datasets.as_source(os.path.join(data, "x.npy"), y)
    args = dict(x=source, batch_size=B)
elif kind == "pydataset":
    source, args = None, dict(x=Batches(workers=2))
else:
    source, args = None, dict(x=endless(), steps_per_epoch=steps)

gradfit.set_random_seed(5)
model = gradfit.Sequential([gradfit.Input(shape=(x.shape[1],)), gradfit.Dense(16, activation="relu"),
                            gradfit.Dropout(0.2), gradfit.Dense(4, activation="softmax")],
                           dtype="float64")
model.compile(optimizer=gradfit.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
killer = KillAt(kill_at, armed=comm.rank == 0)
history = model.fit(**args, epochs=3, verbose=0, validation_data=(x[:48], y[:48]),
                    callbacks=[killer, BackupAndRestore(backup, save_freq=save_freq)])
rows = np.zeros(comm.size)
rows[comm.rank] = getattr(source, "rows_read", 0)
comm.allreduce_array_(rows)
if comm.rank == 0:
    np.save(out + ".npy", model.params)
    with open(out + ".json", "w") as f:
        json.dump({"history": history.history, "steps": killer.seen, "ranks": comm.size,
                   "rows_read": rows.tolist()}, f)
print(f"DONE rank {comm.rank}", flush=True)
