"""Train four tiny models with `model.fit`; every rank records what it ended with.

usage: fit_equivalence.py RESULTS_DIR OUT_DIR
       python fit_equivalence.py ...              one process (the reference)
       mpiexec -n N python fit_equivalence.py ... N ranks, same global batch and seeds

Configurations (all with dropout, so the masks must be drawn for the global batch):
  adam64  float64, Adam, softmax + sparse CE, accuracy; ModelCheckpoint + CSVLogger -> OUT_DIR
  sgd64   float64, SGD with Nesterov momentum, linear + mse, mae
  adam32  float32, the same as adam64
  early   float64, SGD momentum, EarlyStopping(patience=1, min_delta=0.02): stops early
  reg64   float64, SGD momentum, L2 / L1 weight penalties (added once, after the Allreduce)

The global batch (12) divides by 1, 2 and 3; the 37 validation examples divide by neither 2
nor 3, so a padded or repeated example would change the validation mean.

Each rank writes (this script, never the library) RESULTS_DIR/rank{r}.npz (final flat params of
each config) and RESULTS_DIR/rank{r}.json (histories, EarlyStopping's stopped epoch, and the
final validation loss/metric recomputed here by hand from `model.predict`).
"""
import json
import os
import sys

import numpy as np

import gradfit
from gradfit.callbacks import CSVLogger, EarlyStopping, ModelCheckpoint
from gradfit.parallel import get_comm

results, out_dir = sys.argv[1], sys.argv[2]
comm = get_comm()
BATCH, EPOCHS, N_TRAIN, N_VAL = 12, 5, 120, 37

data = np.random.default_rng(0)
x = data.normal(size=(N_TRAIN + N_VAL, 6))
labels = (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 0.5).astype(int)      # 3 classes
target = np.stack([np.sin(x[:, 0]) + x[:, 1] * x[:, 2], x[:, 3] ** 2], axis=1)   # 2 outputs


def build(dtype, out_units, out_activation, regularized=False):
    gradfit.set_random_seed(3)
    l2 = gradfit.regularizers.L2(0.01) if regularized else None
    l1 = gradfit.regularizers.L1(0.005) if regularized else None
    return gradfit.Sequential([
        gradfit.Input(shape=(6,)), gradfit.Dense(16, activation="relu", kernel_regularizer=l2),
        gradfit.Dropout(0.25), gradfit.Dense(8, activation="tanh"), gradfit.Dropout(0.1),
        gradfit.Dense(out_units, activation=out_activation, kernel_regularizer=l1,
                      bias_regularizer=l2)], dtype=dtype)


def hand_metrics(model, xv, yv, kind):
    """Final validation loss and metric from the predictions, summed here in float64."""
    p = model.predict(xv, batch_size=len(xv)).astype(np.float64)
    if kind == "clf":
        return {"loss": float(-np.mean(np.log(p[np.arange(len(yv)), yv]))),
                "metric": float(np.mean(p.argmax(axis=1) == yv))}
    return {"loss": float(np.mean((p - yv) ** 2)), "metric": float(np.mean(np.abs(p - yv)))}


def run(name, dtype, optimizer, kind, callbacks=(), epochs=EPOCHS, regularized=False):
    y = labels if kind == "clf" else target
    if kind == "clf":
        model = build(dtype, 3, "softmax", regularized)
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    else:
        model = build(dtype, 2, None)
        model.compile(optimizer=optimizer, loss="mse", metrics=["mae"])
    xs = x.astype(dtype)
    yv = y[N_TRAIN:] if kind == "clf" else y[N_TRAIN:].astype(dtype)
    history = model.fit(xs[:N_TRAIN], y[:N_TRAIN] if kind == "clf" else y[:N_TRAIN].astype(dtype),
                        batch_size=BATCH, epochs=epochs, verbose=0,
                        validation_data=(xs[N_TRAIN:], yv), callbacks=list(callbacks))
    return model, {"history": history.history, "hand": hand_metrics(model, xs[N_TRAIN:], yv, kind)}


params, record = {}, {"rank": comm.rank, "size": comm.size}
m, record["adam64"] = run("adam64", "float64", gradfit.optimizers.Adam(learning_rate=1e-2), "clf", [
    ModelCheckpoint(os.path.join(out_dir, "ckpt-{epoch:02d}.gfm")),
    CSVLogger(os.path.join(out_dir, "log.csv"))])
params["adam64"] = m.params.copy()
m, record["sgd64"] = run("sgd64", "float64",
                         gradfit.optimizers.SGD(learning_rate=0.02, momentum=0.9, nesterov=True), "reg")
params["sgd64"] = m.params.copy()
m, record["adam32"] = run("adam32", "float32", gradfit.optimizers.Adam(learning_rate=1e-2), "clf")
params["adam32"] = m.params.copy()
early = EarlyStopping(monitor="val_loss", patience=1, min_delta=0.02)
m, record["early"] = run("early", "float64", gradfit.optimizers.SGD(learning_rate=0.01, momentum=0.5),
                         "clf", [early], epochs=30)
params["early"] = m.params.copy()
record["early"]["stopped_epoch"] = early.stopped_epoch
record["early"]["stop_training"] = bool(m.stop_training)

m, record["reg64"] = run("reg64", "float64", gradfit.optimizers.SGD(learning_rate=0.02, momentum=0.9),
                         "clf", regularized=True)
params["reg64"] = m.params.copy()

np.savez(os.path.join(results, f"rank{comm.rank}.npz"), **params)
with open(os.path.join(results, f"rank{comm.rank}.json"), "w") as f:
    json.dump(record, f)
print(f"DONE rank {comm.rank} of {comm.size}", flush=True)
