"""gradfit's run: the public API only (Sequential, compile, fit, a callback that evaluates at
every epoch end and stops at the target).

Warm-up (outside the clock): 3 ``train_on_batch`` steps and one ``predict`` of the evaluation
split on the model itself (BLAS threads started, numba's fused optimizer kernels loaded from
their cache, buffers allocated), then the initial weights are put back, the model is compiled
again (a fresh optimizer state at step 0) and the seed is set again, so the timed run starts
exactly where an unwarmed one would.  The clock starts in the callback's ``on_train_begin``,
after ``fit`` has checked its inputs, and stops inside ``on_epoch_end``.

``batch_size="auto"`` (``fit(batch_size="auto")`` with an ``AdaptiveBatchSize`` from the
recipe's ``auto_min``, ``auto_max``, ``lr_batch``): the base rate follows the recipe's decay over
EXAMPLES (``DecayOverExamples``, a float set before every step; the callback's factor multiplies
it for the step), and the record holds the batch-size trajectory and B_noise (``auto``).  With
``lr_scaling="rule"`` a fixed batch B trains at ``learning_rate * recipe.batch_factor(B)``.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

import gradfit
from gradfit.callbacks import AdaptiveBatchSize, Callback
from gradfit.optimizers import schedules

from .clock import accuracy_of


class StopAtTarget(Callback):
    """Starts the clock at ``on_train_begin``; at every epoch end evaluates the evaluation split
    inside the clock and stops training once the target is reached."""

    def __init__(self, clock, x_eval, y_eval):
        super().__init__()
        self.clock, self.x_eval, self.y_eval = clock, x_eval, y_eval

    def on_train_begin(self, logs=None):
        self.clock.start()

    def on_epoch_end(self, epoch, logs=None):
        def accuracy():
            return accuracy_of(self.model.predict(self.x_eval, batch_size=len(self.x_eval)), self.y_eval)
        if self.clock.epoch_end(epoch, accuracy):
            self.model.stop_training = True


class DecayOverExamples(Callback):
    """Sets the optimizer's base rate before every step to ``recipe.lr_at_epochs(epochs seen)``,
    epochs seen = (whole epochs + rows of this epoch consumed) / n: the recipe's decay over
    examples, whatever the batch size."""

    def __init__(self, recipe, n):
        super().__init__()
        self.recipe, self.n = recipe, n

    def on_train_batch_begin(self, batch, logs=None):
        state = self.model.train_state
        self.model.optimizer.learning_rate = self.recipe.lr_at_epochs(state.epoch + state.seen / self.n)


def adaptive(recipe):
    """The AdaptiveBatchSize of an "auto" recipe (its rule: "none" unless lr_scaling="rule")."""
    return AdaptiveBatchSize(recipe.auto_min, recipe.auto_max, base_batch_size=recipe.lr_batch,
                             lr_rule="auto" if recipe.lr_scaling == "rule" else "none")


def learning_rate(recipe, steps_per_epoch):
    lr, n = recipe.learning_rate, recipe.decay_steps(steps_per_epoch)
    if recipe.schedule == "linear":
        return schedules.PolynomialDecay(lr, n, lr * recipe.end_fraction)
    if recipe.schedule == "cosine":
        return schedules.CosineDecay(lr, n, alpha=recipe.end_fraction)
    return lr


def optimizer(recipe, steps_per_epoch):
    lr = learning_rate(recipe, steps_per_epoch)
    if recipe.optimizer == "adam":
        return gradfit.optimizers.Adam(lr, recipe.beta_1, recipe.beta_2, recipe.epsilon)
    if recipe.optimizer == "adamw":
        return gradfit.optimizers.AdamW(lr, recipe.weight_decay, recipe.beta_1, recipe.beta_2,
                                        recipe.epsilon)
    return gradfit.optimizers.SGD(lr, momentum=recipe.momentum, nesterov=recipe.nesterov)


def build(recipe, n_in, n_out, seed):
    gradfit.set_random_seed(seed)
    layers = [gradfit.Input(shape=(n_in,))]
    layers += [gradfit.Dense(h, activation=recipe.activation, kernel_initializer=recipe.init)
               for h in recipe.hidden]
    layers.append(gradfit.Dense(n_out, kernel_initializer=recipe.init))    # logits
    model = gradfit.Sequential(layers)
    model.build((None, n_in))    # draw the weights now, right after the seed (else: at first use)
    return model


def run(workload, recipe, seed, threads, clock) -> dict:
    gradfit.set_num_threads(threads)
    x, y = workload.x_train, workload.y_train
    auto = recipe.batch_size == "auto"
    b = recipe.auto_min if auto else recipe.batch_size
    if auto:      # a float base rate, decayed over examples by DecayOverExamples
        recipe_lr = replace(recipe, schedule="constant")
    else:
        recipe_lr = replace(recipe, learning_rate=recipe.learning_rate * recipe.batch_factor(b))
    steps = len(x) // b                          # fit's equal-size batches (drop_remainder)
    loss = gradfit.losses.SparseCategoricalCrossentropy(from_logits=True)
    model = build(recipe, x.shape[1], 10, seed)
    model.compile(optimizer=optimizer(recipe_lr, steps), loss=loss)
    initial = model.get_weights()
    for k in range(3):                           # warm-up on the model itself (see docstring)
        rows = (np.arange(b) + k * b) % len(x)
        model.train_on_batch(x[rows], y[rows])
    model.predict(workload.x_eval, batch_size=len(workload.x_eval))
    model.set_weights(initial)
    model.compile(optimizer=optimizer(recipe_lr, steps), loss=loss)
    gradfit.set_random_seed(seed)

    cbs = [StopAtTarget(clock, workload.x_eval, workload.y_eval)]
    if auto:
        cbs = [adaptive(recipe), DecayOverExamples(recipe, len(x))] + cbs
    history = model.fit(x, y, batch_size="auto" if auto else b, epochs=recipe.max_epochs,
                        shuffle=True, verbose=0, callbacks=cbs)
    test = None
    if workload.x_test is not None:
        test = accuracy_of(model.predict(workload.x_test, batch_size=len(workload.x_test)),
                           workload.y_test)
    info = {"steps_per_epoch": None if auto else steps, "test_accuracy_after": test,
            "impl": {"optimizer": type(model.optimizer).__name__,
                     "fused": bool(getattr(model.optimizer, "fused", False)),
                     "blas_threads": threads, "dtype": str(np.dtype(model.dtype))}}
    if auto:
        info["auto"] = {"trajectory": cbs[0].history, "n_train": len(x),
                        "first_batch": cbs[0].controller.sizes[0],
                        "batch_size_per_epoch": history.history.get("batch_size"),
                        "b_simple_per_epoch": [None if v != v else v for v in   # NaN: null
                                               history.history.get("b_simple", [])],
                        "lr_rule": cbs[0].controller.lr_rule}
    return info
