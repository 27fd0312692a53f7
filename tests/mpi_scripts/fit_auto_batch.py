"""`fit(batch_size="auto")` in float64; every rank records what it ended with.

usage: fit_auto_batch.py RESULTS_DIR
       python fit_auto_batch.py ...              one process (the reference)
       mpiexec -n 2 python fit_auto_batch.py ... two ranks: the same trajectory and weights

Batches from 8 to 256 (2 x 2**k, so one process and two ranks allow the same sizes), measured
every 2 steps on the per-example route (pooled over the ranks), Adam with the square-root
rule, dropout (masks drawn for the global batch). Writes RESULTS_DIR/rank{r}.npz (the final
flat params) and rank{r}.json (History and the AdaptiveBatchSize trajectory).
"""
import json
import os
import sys

import numpy as np

import gradfit
from gradfit.callbacks import AdaptiveBatchSize
from gradfit.parallel import get_comm

results = sys.argv[1]
comm = get_comm()
data = np.random.default_rng(0)
x = data.normal(size=(800, 6))
y = (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 0.5).astype(int)      # 3 classes
gradfit.set_random_seed(3)
model = gradfit.Sequential([gradfit.Input(shape=(6,)), gradfit.Dense(16, activation="relu"),
                            gradfit.Dropout(0.2), gradfit.Dense(3, activation="softmax")],
                           dtype="float64")
model.compile(optimizer=gradfit.optimizers.Adam(learning_rate=1e-2),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
auto = AdaptiveBatchSize(8, 256, every=2, min_steps=3, ema=0.8)
history = model.fit(x, y, batch_size="auto", epochs=5, verbose=0, callbacks=[auto])
np.savez(os.path.join(results, f"rank{comm.rank}.npz"), params=model.params)
with open(os.path.join(results, f"rank{comm.rank}.json"), "w") as f:
    json.dump({"size": comm.size, "history": history.history, "trajectory": auto.history,
               "route": auto.noise.route}, f)
print(f"DONE rank {comm.rank} of {comm.size}", flush=True)
