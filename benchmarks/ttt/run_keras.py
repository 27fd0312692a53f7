"""Keras 3's run, on the backend that ``KERAS_BACKEND`` names (torch or jax; set by the command
before Keras is imported), written as a Keras user who cares about speed would.

* ``model.fit`` on the numpy arrays (Keras's own data path), ``compile`` without metrics (a
  compiled metric runs on every training batch), logits with
  ``SparseCategoricalCrossentropy(from_logits=True)``, the schedule as
  ``keras.optimizers.schedules.PolynomialDecay`` / ``CosineDecay`` (per step).
* ``jit_compile="auto"``: XLA on JAX; eager on torch (Keras's torch default).
* Threads: torch backend ``torch.set_num_threads(threads)``; JAX reads ``XLA_FLAGS``, which the
  command sets for one thread (``--xla_cpu_multi_thread_eigen=false
  intra_op_parallelism_threads=1``); with more threads XLA uses every core.
* Keras's ``fit`` on numpy arrays always adds the final partial batch, so an epoch is
  ``ceil(n / B)`` steps (235 at B=256 on MNIST, against 234 for gradfit and torch) and the
  decay spans ``decay_epochs * ceil(n / B)`` steps.
* Evaluation: ``model.predict`` of the whole evaluation split in one batch.

Warm-up (outside the clock): one ``fit`` epoch on B + (n mod B) rows (so JAX compiles the train
step for both batch shapes) and one ``predict`` of the evaluation split, on the model itself
(Keras compiles per model); then the initial weights are put back, the optimizer's iteration
count and moments are zeroed and the seed is set again.  (Keras's torch data loader then draws
a different, equally seeded, shuffle than a first ``fit`` would: the torch RNG is consumed
differently by a model's first fit; with ``shuffle=False`` the warmed and unwarmed runs are
equal, tested.)  The clock starts in the callback's ``on_train_begin`` and stops inside
``on_epoch_end``.
"""
from __future__ import annotations

import math

import keras
import numpy as np

from .clock import accuracy_of


class StopAtTarget(keras.callbacks.Callback):
    def __init__(self, clock, x_eval, y_eval):
        super().__init__()
        self.clock, self.x_eval, self.y_eval = clock, x_eval, y_eval

    def on_train_begin(self, logs=None):
        self.clock.start()

    def on_epoch_end(self, epoch, logs=None):
        def accuracy():
            out = self.model.predict(self.x_eval, batch_size=len(self.x_eval), verbose=0)
            return accuracy_of(np.asarray(out), self.y_eval)
        if self.clock.epoch_end(epoch, accuracy):
            self.model.stop_training = True


def build(recipe, n_in, n_out):
    init = (keras.initializers.GlorotUniform() if recipe.init == "glorot_uniform"
            else keras.initializers.LecunNormal())      # truncated normal, std sqrt(1/fan_in)
    layers = [keras.Input(shape=(n_in,))]
    layers += [keras.layers.Dense(h, activation=recipe.activation, kernel_initializer=init)
               for h in recipe.hidden]
    layers.append(keras.layers.Dense(n_out, kernel_initializer=init))
    return keras.Sequential(layers)


def optimizer(recipe, steps_per_epoch):
    lr, n = recipe.learning_rate, recipe.decay_steps(steps_per_epoch)
    sched = keras.optimizers.schedules
    if recipe.schedule == "linear":
        lr = sched.PolynomialDecay(lr, n, lr * recipe.end_fraction, power=1.0)
    elif recipe.schedule == "cosine":
        lr = sched.CosineDecay(lr, n, alpha=recipe.end_fraction)
    if recipe.optimizer == "adam":
        return keras.optimizers.Adam(lr, recipe.beta_1, recipe.beta_2, recipe.epsilon)
    if recipe.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, recipe.weight_decay, recipe.beta_1, recipe.beta_2,
                                      recipe.epsilon)
    return keras.optimizers.SGD(lr, momentum=recipe.momentum, nesterov=recipe.nesterov)


def _reset_optimizer(opt):
    """Iteration count and slots back to zero; a constant learning rate variable is kept."""
    for v in opt.variables:
        if "learning_rate" not in v.path:
            v.assign(np.zeros(v.shape, dtype=v.dtype))


def warmed_model(workload, recipe, seed, steps_per_epoch):
    """The compiled model, warmed up and put back to its initial state (module docstring)."""
    x, y = workload.x_train, workload.y_train
    b = recipe.batch_size
    keras.utils.set_random_seed(seed)
    model = build(recipe, x.shape[1], 10)
    model.compile(optimizer=optimizer(recipe, steps_per_epoch),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    initial = model.get_weights()
    warm = b + (len(x) % b)
    model.fit(x[:warm], y[:warm], batch_size=b, epochs=1, shuffle=False, verbose=0)
    model.predict(workload.x_eval, batch_size=len(workload.x_eval), verbose=0)
    model.set_weights(initial)
    _reset_optimizer(model.optimizer)
    keras.utils.set_random_seed(seed)
    return model


def run(workload, recipe, seed, threads, clock) -> dict:
    backend = keras.backend.backend()
    if backend == "torch":
        import torch
        torch.set_num_threads(threads)
    x, y = workload.x_train, workload.y_train
    b = recipe.batch_size
    steps = math.ceil(len(x) / b)
    model = warmed_model(workload, recipe, seed, steps)

    cb = StopAtTarget(clock, workload.x_eval, workload.y_eval)
    model.fit(x, y, batch_size=b, epochs=recipe.max_epochs, shuffle=True, verbose=0, callbacks=[cb])
    test = None
    if workload.x_test is not None:
        out = model.predict(workload.x_test, batch_size=len(workload.x_test), verbose=0)
        test = accuracy_of(np.asarray(out), workload.y_test)
    return {"steps_per_epoch": steps, "test_accuracy_after": test,
            "impl": {"backend": backend, "optimizer": type(model.optimizer).__name__,
                     "jit_compile": model.jit_compile}}
