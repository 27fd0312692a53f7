"""Train with batch_size="auto" and BackupAndRestore; optionally SIGKILL itself after a step.

usage: python auto_batch_fit.py BACKUP_DIR OUT.npz KILL_AT_STEP SAVE_FREQ
KILL_AT_STEP = -1 runs to the end. SAVE_FREQ = "epoch" or an integer number of steps.
600 examples, batches from 8 to 128 measured every 2 steps: the batch grows within the first
epoch and again mid-epoch later (steps 5, 9, 23, 35 with seed 7), with dropout and
ReduceLROnPlateau lowering the base rate under the batch's learning-rate factor.
"""
import json
import sys

import numpy as np

import gradfit
from gradfit.callbacks import AdaptiveBatchSize, ReduceLROnPlateau
from gradfit.callbacks.backup_and_restore import BackupAndRestore
from kill_at import KillAt


backup_dir, out, kill_at, save_freq = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
save_freq = save_freq if save_freq == "epoch" else int(save_freq)
gradfit.set_random_seed(7)
data = np.random.default_rng(0)
x = data.normal(size=(630, 12)).astype("float32")
y = (x[:, :3].sum(axis=1) > 0).astype(int) + (x[:, 3] > 1).astype(int)
model = gradfit.Sequential([gradfit.Input(shape=(12,)), gradfit.Dense(16, activation="relu"),
                            gradfit.Dropout(0.3), gradfit.Dense(3, activation="softmax")])
model.compile(optimizer=gradfit.optimizers.Adam(learning_rate=3e-3),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
auto = AdaptiveBatchSize(8, 128, every=2, min_steps=3, ema=0.8)
history = model.fit(x[:600], y[:600], batch_size="auto", epochs=6, verbose=0,
                    validation_data=(x[600:], y[600:]),
                    callbacks=[auto, ReduceLROnPlateau(monitor="loss", patience=0, factor=0.7,
                                                       min_delta=0.05),
                               BackupAndRestore(backup_dir, save_freq=save_freq,
                                                delete_checkpoint=False),
                               KillAt(kill_at)])
np.savez(out, params=model.params)
with open(out + ".json", "w") as f:
    json.dump({"history": history.history, "trajectory": auto.history}, f)
