"""Data-parallel `fit` with BackupAndRestore(save_freq=3); optionally one rank SIGKILLs itself.

usage: [mpiexec -n N] python fit_resume.py RESULTS_DIR BACKUP_DIR

If RESULTS_DIR/kill holds "RANK STEP", that rank deletes the file, writes the time to
RESULTS_DIR/killed_at and sends itself SIGKILL after its STEP-th training step (no Python
cleanup runs).  So the very same command, run again, trains on without a kill and resumes from
the last backup.  At the end every rank writes its flat float32 params to RESULTS_DIR/rank{r}.npy
and the number of steps this launch trained to RESULTS_DIR/steps{r} (a resumed run trains fewer).
"""
import os
import signal
import sys
import time

import numpy as np

import gradfit
from gradfit.callbacks import BackupAndRestore, Callback
from gradfit.parallel import get_comm

results, backup = sys.argv[1], sys.argv[2]
comm = get_comm()
order = os.path.join(results, "kill")
victim, kill_step = map(int, open(order).read().split()) if os.path.exists(order) else (-1, -1)


class KillAt(Callback):
    seen = 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if comm.rank == victim and self.seen == kill_step:
            os.remove(order)
            with open(os.path.join(results, "killed_at"), "w") as f:
                f.write(repr(time.time()))
            os.kill(os.getpid(), signal.SIGKILL)


gradfit.set_random_seed(11)
data = np.random.default_rng(1)
x = data.normal(size=(150, 8)).astype("float32")
y = (x[:, :4].sum(axis=1) > 0).astype(int) + (x[:, 4] > 0.7).astype(int)
model = gradfit.Sequential([gradfit.Input(shape=(8,)), gradfit.Dense(12, activation="relu"),
                            gradfit.Dropout(0.3), gradfit.Dense(3, activation="softmax")])
model.compile(optimizer=gradfit.optimizers.Adam(learning_rate=5e-3),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
kill = KillAt()
model.fit(x[:120], y[:120], batch_size=12, epochs=4, verbose=0, validation_data=(x[120:], y[120:]),
          callbacks=[BackupAndRestore(backup, save_freq=3), kill])
np.save(os.path.join(results, f"rank{comm.rank}.npy"), model.params)
with open(os.path.join(results, f"steps{comm.rank}"), "w") as f:
    f.write(str(kill.seen))
print(f"DONE rank {comm.rank}", flush=True)
