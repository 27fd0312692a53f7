"""Train a small model with BackupAndRestore; optionally SIGKILL itself after a given step.

usage: python resumable_fit.py BACKUP_DIR OUT.npy KILL_AT_STEP SAVE_FREQ
KILL_AT_STEP = -1 runs to the end. SAVE_FREQ = "epoch" or an integer number of steps.
"""
import sys

import numpy as np

import gradfit
from gradfit.callbacks import EarlyStopping, ReduceLROnPlateau
from gradfit.callbacks.backup_and_restore import BackupAndRestore
from kill_at import KillAt


backup_dir, out, kill_at, save_freq = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
save_freq = save_freq if save_freq == "epoch" else int(save_freq)
gradfit.set_random_seed(7)
data = np.random.default_rng(0)
x = data.normal(size=(230, 12)).astype("float32")
y = (x[:, :3].sum(axis=1) > 0).astype(int) + (x[:, 3] > 1).astype(int)
model = gradfit.Sequential([gradfit.Input(shape=(12,)), gradfit.Dense(16, activation="relu"),
                            gradfit.Dropout(0.3), gradfit.Dense(3, activation="softmax")])
model.compile(optimizer=gradfit.optimizers.Adam(learning_rate=3e-3), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
history = model.fit(x[:200], y[:200], batch_size=32, epochs=8, verbose=0,
                    validation_data=(x[200:], y[200:]),
                    callbacks=[EarlyStopping(patience=3, restore_best_weights=True),
                               ReduceLROnPlateau(monitor="loss", patience=0, factor=0.7, min_delta=0.05),
                               BackupAndRestore(backup_dir, save_freq=save_freq, delete_checkpoint=False),
                               KillAt(kill_at)])
np.save(out, model.params)
np.save(out + ".loss.npy", np.array(history.history["loss"]))
np.save(out + ".lr.npy", np.array(history.history["learning_rate"]))
