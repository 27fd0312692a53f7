"""Second-order methods under MPI: each rank holds its own rows of the full batch.

usage: [mpiexec -n N] python second_order.py RESULTS_DIR

Rank r builds the full-batch `Objective` from its rows (np.array_split of 60 examples); the
objective's sums over examples are Allreduced once per evaluation, so every rank takes the
same steps as one process holding all rows. Runs 4 iterations of LM (J^T J), L-BFGS
(gradients), Newton-CG (Hessian-vector products) and Newton (exact Hessian) from the same
start, then the same methods through ``compile`` / ``fit`` (4 epochs = 4 full-batch iterations)
on 61 examples, which the ranks share unevenly, and writes RESULTS_DIR/rank{r}.npz with the
weights after each.
"""
import os
import sys

import numpy as np

import gradfit
from gradfit.optimizers.second_order import Objective, get
from gradfit.parallel import get_comm

results = sys.argv[1]
comm = get_comm()
data = np.random.default_rng(0)
x = data.uniform(-2, 2, size=(60, 3))
y = np.stack([np.sin(x[:, 0]) * x[:, 1], np.cos(x[:, 2])], axis=1)
rows = np.array_split(np.arange(60), comm.size)[comm.rank]
gradfit.set_random_seed(1)
model = gradfit.Sequential([gradfit.Input(shape=(3,)), gradfit.Dense(6, activation="tanh"),
                            gradfit.Dense(2)], dtype="float64")
model.build()
start = model.params.copy()
out = {"start": start}
for name in ("lm", "lbfgs", "newton_cg", "newton"):
    model.params[...] = start
    objective = Objective(model, x[rows], y[rows], loss="mse")
    assert objective.examples == 60
    method = get(name)
    state = method.init(model.params, network=objective.describe())
    losses = [method.iterate(objective, model.params, state)[0] for _ in range(4)]
    out[name] = model.params.copy()
    out[name + "_losses"] = np.array(losses)
x61 = data.uniform(-2, 2, size=(61, 3))
y61 = np.stack([np.sin(x61[:, 0]) * x61[:, 1], np.cos(x61[:, 2])], axis=1)
for name in ("lm", "lbfgs", "newton_cg", "bfgs"):
    model.params[...] = start
    model.compile(optimizer=name, loss="mse")
    history = model.fit(x61, y61, epochs=4, verbose=0)
    out["fit_" + name] = model.params.copy()
    out["fit_" + name + "_losses"] = np.array(history.history["loss"])
np.savez(os.path.join(results, f"rank{comm.rank}.npz"), **out)
