"""`model.fit` with a global batch size that does not divide by the number of ranks.

usage: mpiexec -n N python fit_bad_batch.py RESULTS_DIR BATCH

Every rank must raise the ValueError before any collective (else the ranks that passed the
check would wait in Allreduce for the others: a hang).  Each rank writes the message it got to
RESULTS_DIR/rank{r}.txt (this script, not the library), waits for the others (so no rank is
aborted before it has written), then lets the error propagate: gradfit's excepthook aborts the
job with a non-zero status.
"""
import os
import sys

import numpy as np

import gradfit
from gradfit.parallel import get_comm

results, batch = sys.argv[1], int(sys.argv[2])
comm = get_comm()
gradfit.set_random_seed(0)
model = gradfit.Sequential([gradfit.Input(shape=(4,)), gradfit.Dense(3, activation="softmax")])
model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
x, y = np.ones((60, 4), "float32"), np.zeros(60, int)
try:
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
except ValueError as exc:
    with open(os.path.join(results, f"rank{comm.rank}.txt"), "w") as f:
        f.write(str(exc))
    comm.barrier()
    raise
print(f"TRAINED rank {comm.rank}", flush=True)   # must not happen
