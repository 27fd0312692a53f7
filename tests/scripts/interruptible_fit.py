"""Train with BackupAndRestore(save_freq=False) until done or interrupted (SIGINT / SIGTERM).

usage: python interruptible_fit.py BACKUP_DIR OUT.npy PROGRESS_FILE

Each step appends its number to PROGRESS_FILE (and sleeps 20 ms, so that a test can signal the
run mid-epoch). At the end: OUT.npy holds the flat params, OUT.json how the run ended.
"""
import json
import sys
import time

import numpy as np

import gradfit
from gradfit.callbacks import BackupAndRestore, Callback, EarlyStopping

backup_dir, out, progress = sys.argv[1:4]


class Progress(Callback):
    def on_train_batch_end(self, batch, logs=None):
        with open(progress, "a") as f:
            f.write(f"{self.model.train_state.epoch} {batch}\n")
        time.sleep(0.02)


gradfit.set_random_seed(11)
data = np.random.default_rng(0)
x = data.normal(size=(260, 8)).astype("float32")
y = (x[:, :2].sum(axis=1) > 0).astype(int)
model = gradfit.Sequential([gradfit.Input(shape=(8,)), gradfit.Dense(16, activation="relu"),
                            gradfit.Dropout(0.2), gradfit.Dense(2, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x[:200], y[:200], batch_size=20, epochs=6, verbose=2,
                    validation_data=(x[200:], y[200:]),
                    callbacks=[BackupAndRestore(backup_dir, save_freq=False),
                               EarlyStopping(patience=50, restore_best_weights=False),
                               Progress()])
np.save(out, model.params)
state = model.train_state
with open(out + ".json", "w") as f:
    json.dump({"stop_reason": state.stop_reason, "epoch": state.epoch, "step": state.step,
               "loss": history.history.get("loss", [])}, f)
