"""``train_on_batch`` under MPI: each rank passes its own rows of every global batch.

usage: [mpiexec -n N] python train_on_batch.py RESULTS_DIR

Rank r takes rows [r*b, (r+1)*b) of each 12-row global batch (uneven shares for N = 5: the
rows are split with np.array_split) and calls train_on_batch on them; the step is that of the
whole global batch (one Allreduce), so every rank ends with the same weights as one process
calling train_on_batch on the whole batch. Writes RESULTS_DIR/rank{r}.npz: params, losses.
"""
import os
import sys

import numpy as np

import gradfit
from gradfit.parallel import get_comm

results = sys.argv[1]
comm = get_comm()
gradfit.set_random_seed(3)
data = np.random.default_rng(0)
x = data.normal(size=(120, 5))
y = (x[:, 0] - x[:, 1] > 0).astype(int)
model = gradfit.Sequential([gradfit.Input(shape=(5,)), gradfit.Dense(16, activation="tanh"),
                            gradfit.Dropout(0.25), gradfit.Dense(2, activation="softmax")],
                           dtype="float64")
model.compile(optimizer=gradfit.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
losses = []
for s in range(0, 120, 12):
    rows = np.array_split(np.arange(s, s + 12), comm.size)[comm.rank]
    losses.append(model.train_on_batch(x[rows], y[rows]))
np.savez(os.path.join(results, f"rank{comm.rank}.npz"), params=model.params,
         losses=np.array(losses, dtype=np.float64))
