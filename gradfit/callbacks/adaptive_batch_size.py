"""AdaptiveBatchSize: the global batch grows toward the gradient noise scale while training.

``fit(x, y, batch_size="auto")`` is ``fit(..., callbacks=[AdaptiveBatchSize(), ...])`` with the
batch chosen by it; pass ``AdaptiveBatchSize(...)`` yourself (still with ``batch_size="auto"``)
to change its options. One machinery, three parts that each exist on their own:

1. **Measure** B_noise: a `GradientNoiseScale` owned by this callback (its hooks are called from
   here, so it measures before the decision of the same step), on its per-example route by
   default: the exact per-example gradient norms of the global batch (McCandlish et al. 2018,
   App. A; one process or pooled over the ranks, so the estimate, hence the whole batch-size
   trajectory, is the same for any number of ranks).
2. **Decide**: after every new measurement a `BatchSizeController` turns B_noise into the next
   global batch (the allowed size of least (1 + B_noise/B)(1 + B/B_noise), with hysteresis,
   never shrinking, by at most ``max_factor`` per change) and a learning-rate factor:
   ``"sgd"``: McCandlish's eps_opt(B) = eps_max / (1 + B_noise/B) relative to ``base_batch_size``;
   ``"adam"``: its square root (Malladi et al. 2022's square-root rule below B_noise, flat
   above); ``"auto"``: "sgd" for `SGD`, "adam" for every adaptive optimizer. The sources and
   the reasons are in `gradfit.noise_scale.batch_controller`.
3. **Apply**: it sets ``model.train_state.batch_size`` (the loop reads it before every step and
   consumes the epoch's permutation in order, so batches stay disjoint when the size changes
   mid-epoch; under MPI every rank's slice grows with the global batch) and
   ``model.train_state.lr_factor``, which `train_step` multiplies into the optimizer's learning
   rate for the step only (``optimizer.update(..., lr_scale=)``): the rate the optimizer holds, a
   float or a schedule, stays the base rate that ReduceLROnPlateau, LearningRateScheduler,
   checkpoints and ``logs["learning_rate"]`` see. The learning rate you compile with is the
   rate at ``base_batch_size`` (default: the first batch, ``min_batch_size``).

The allowed global batches are ``ranks x 2**k`` (``rounding="pow2"``) or multiples of the
ranks (``"multiple"``) between ``min_batch_size`` (default 32, rounded up to the ranks) and
``max_batch_size`` (default 4096), the training set and what fits in the memory available
(`gradfit.memory`, every rank counted on one node). A schedule of the learning rate counts
optimizer steps, whose number per epoch now changes: schedule by epoch (LearningRateScheduler)
to keep a decay tied to the data seen.

Logs: every batch, ``batch_size`` (the global batch just trained; the progress bar shows it);
every epoch, ``batch_size`` (of the epoch's last step), ``lr_factor`` (of the next step) and
GradientNoiseScale's ``b_simple``, ``noise_g_sq``, ``noise_trace_sigma``, so History and
CSVLogger hold the trajectory per epoch. ``self.history`` holds it per decision: ``step`` (steps
of this fit), ``examples`` (examples trained on so far), ``b_noise``, ``batch_size`` (from the
next step on) and ``lr_factor``. All of it, with the controller and the estimator, is in
``get_state``, so a run resumed by BackupAndRestore continues bit-identically.
"""
from __future__ import annotations

import numpy as np

from ..checks import ArgumentError, check_choice, check_int, check_number
from ..memory import available_bytes, training_bytes
from ..noise_scale.batch_controller import ROUNDINGS, BatchSizeController
from .base import Callback
from .gradient_noise_scale import METHODS, GradientNoiseScale

AUTO = "auto"
DEFAULT_MIN, DEFAULT_MAX = 32, 4096
LR_RULES = ("auto", "sgd", "adam", "none")
#: the keys this callback adds to the epoch logs (``gradfit train`` plots the others)
LOG_KEYS = ("batch_size", "lr_factor", "b_simple", "noise_g_sq", "noise_trace_sigma")


def with_adaptive_batch_size(callbacks, batch_size):
    """``(callbacks, adaptive)`` for ``fit``'s ``batch_size``: "auto" takes the
    `AdaptiveBatchSize` in ``callbacks`` or puts a default one first (before History, CSVLogger
    and the progress bar, which then record its logs); an int leaves ``adaptive`` None and
    refuses an AdaptiveBatchSize, which would contradict it."""
    callbacks = list(callbacks or [])
    found = [cb for cb in callbacks if isinstance(cb, AdaptiveBatchSize)]
    if batch_size != AUTO:
        if isinstance(batch_size, str):
            raise ArgumentError("batch_size", batch_size, "an integer >= 1 or 'auto' (chosen "
                                "from the gradient noise scale while training)")
        if found:
            raise ArgumentError("batch_size", batch_size, "'auto' when the callbacks hold an "
                                "AdaptiveBatchSize (it chooses every batch)",
                                "pass batch_size='auto', or drop AdaptiveBatchSize to train "
                                "at a fixed batch size")
        return callbacks, None
    if len(found) > 1:
        raise ArgumentError("callbacks", f"{len(found)} AdaptiveBatchSize callbacks",
                            "at most one AdaptiveBatchSize", "keep one")
    if not found:
        found = [AdaptiveBatchSize()]
        callbacks.insert(0, found[0])
    return callbacks, found[0]


class AdaptiveBatchSize(Callback):
    """Choose the global batch (and scale the learning rate) from B_noise while training.

    Args:
        min_batch_size: the first and smallest global batch (default 32, rounded up to a
            multiple of the ranks).
        max_batch_size: the largest (default 4096, capped by the training set and memory).
        base_batch_size: the batch the compiled learning rate is meant for (default: the first).
        lr_rule: "auto" (default), "sgd", "adam" or "none" (see the module docstring).
        rounding: "pow2" (ranks x 2**k, default) or "multiple" (any multiple of the ranks).
        threshold: the relative saving of McCandlish's cost a change must bring (default 0.05).
        max_factor: the largest ratio of one change (default 2.0: at most a doubling).
        shrink: let the batch decrease when B_noise falls (default False).
        every, ema, min_steps: GradientNoiseScale's (measure every 10 steps, EMA 0.95, a value
            after 10 measurements).
        method: GradientNoiseScale's route, "per_example" by default (the estimate, hence the
            trajectory, is the same for any number of ranks); "two_batch" is free under MPI
            but depends on the rank count.

    ``fit`` calls `prepare` once it knows the data, before any work: every contradiction
    (bounds, ranks, memory, data size) is refused there with the values and the fix.
    """

    def __init__(self, min_batch_size=None, max_batch_size=None, *, base_batch_size=None,
                 lr_rule="auto", rounding="pow2", threshold=0.05, max_factor=2.0, shrink=False,
                 every=10, ema=0.95, min_steps=10, method="per_example"):
        super().__init__()
        owner = "AdaptiveBatchSize"
        for name, v in (("min_batch_size", min_batch_size), ("max_batch_size", max_batch_size),
                        ("base_batch_size", base_batch_size)):
            if v is not None:
                check_int(name, v, 1, owner=owner)
        if min_batch_size is not None and max_batch_size is not None \
                and min_batch_size > max_batch_size:
            raise ArgumentError("min_batch_size", min_batch_size, f"at most max_batch_size="
                                f"{max_batch_size}", "swap them or widen the range", owner)
        self.min_batch_size, self.max_batch_size = min_batch_size, max_batch_size
        self.base_batch_size = base_batch_size
        self.lr_rule = check_choice("lr_rule", lr_rule, LR_RULES, owner=owner)
        self.rounding = check_choice("rounding", rounding, ROUNDINGS, owner=owner)
        self.threshold = check_number("threshold", threshold, 0.0, below=1.0, owner=owner)
        self.max_factor = None if max_factor is None else check_number(
            "max_factor", max_factor, above=1.0, owner=owner, fix="or None for no limit")
        if not isinstance(shrink, bool):
            raise ArgumentError("shrink", shrink, "True or False", owner=owner)
        self.shrink = shrink
        check_choice("method", method, METHODS, owner=owner)
        self.noise = GradientNoiseScale(ema=ema, min_steps=min_steps, every=every, method=method)
        self.controller = None
        self._reset()

    def _reset(self):
        self.steps = 0          # steps of this fit (of the runs it resumes)
        self.examples = 0       # examples trained on so far
        self.used = None        # the global batch of the last step
        self._seen_before = 0
        self.history = {"step": [], "examples": [], "b_noise": [], "batch_size": [],
                        "lr_factor": []}

    # -- before training ----------------------------------------------------------------------
    def prepare(self, model, n: int, steps_per_epoch=None) -> int:
        """Check every option against ``n`` training examples, the ranks and the memory; build
        the controller; return the first global batch. ``fit`` calls it before any work."""
        self.controller = self.make_controller(n, model.comm.size, model.optimizer,
                                               memory_cap(model), steps_per_epoch)
        return self.controller.batch_size

    def make_controller(self, n: int, ranks: int = 1, optimizer=None, max_fit=None,
                        steps_per_epoch=None) -> BatchSizeController:
        """The `BatchSizeController` of these options for ``n`` examples on ``ranks`` ranks (a
        ValueError naming the values and the fix for any contradiction): what `prepare` uses,
        and what a command line calls to check its options before it prints anything."""
        lo = self.min_batch_size or ranks * -(-min(DEFAULT_MIN, n) // ranks)
        hi = self.max_batch_size or max(lo, ranks * (DEFAULT_MAX // ranks))
        rule = self.lr_rule
        if rule == AUTO:
            rule = "sgd" if type(optimizer).__name__ == "SGD" else "adam"
        return BatchSizeController(
            lo, hi, ranks=ranks, max_fit=max_fit, rounding=self.rounding,
            threshold=self.threshold, shrink=self.shrink, max_factor=self.max_factor,
            lr_rule=rule, base_batch_size=self.base_batch_size, steps_per_epoch=steps_per_epoch,
            n_examples=n)

    def describe(self) -> str:
        """One line for the start of training."""
        c = self.controller
        sizes = c.sizes
        kind = "powers of two" if self.rounding == "pow2" else "multiples"
        return (f"batch size 'auto': global batches of {sizes[0]} to {sizes[-1]} ({kind}), "
                f"grown toward the gradient noise scale; learning rate x the {c.lr_rule!r} rule "
                f"relative to batch {c.base_batch_size}")

    # -- hooks --------------------------------------------------------------------------------
    def set_model(self, model):
        super().set_model(model)
        self.noise.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        self.noise.set_params(params)

    def on_train_begin(self, logs=None):
        if self.controller is None:
            raise RuntimeError("AdaptiveBatchSize chooses fit's batch size: pass it to "
                               "fit(..., batch_size='auto', callbacks=[...])")
        self._reset()
        self.controller.reset()
        self.noise.on_train_begin(logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._seen_before = self.model.train_state.seen
        self.noise.on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        state = self.model.train_state
        self.used = state.seen - self._seen_before
        self.steps += 1
        self.examples += self.used
        if logs is not None:
            logs["batch_size"] = self.used
        measured = len(self.noise.history["step"])
        self.noise.on_train_batch_end(batch, logs)
        if len(self.noise.history["step"]) > measured:      # a new measurement: decide
            state.batch_size = self.controller.update(self.noise.b_simple)
            state.lr_factor = self.controller.lr_factor()
            for key, value in (("step", self.steps), ("examples", self.examples),
                               ("b_noise", self.controller.b_noise),
                               ("batch_size", state.batch_size), ("lr_factor", state.lr_factor)):
                self.history[key].append(value)

    def on_epoch_end(self, epoch, logs=None):
        self.noise.on_epoch_end(epoch, logs)
        if logs is not None:
            logs["batch_size"] = self.used
            logs["lr_factor"] = self.model.train_state.lr_factor

    # -- resuming -----------------------------------------------------------------------------
    def get_state(self) -> dict:
        return {"controller": self.controller.get_state(), "noise": self.noise.get_state(),
                "steps": self.steps, "examples": self.examples, "used": self.used,
                "history": {k: list(v) for k, v in self.history.items()}}

    def set_state(self, state: dict) -> None:
        self.controller.set_state(state["controller"])
        self.noise.set_state(state["noise"])
        self.steps, self.examples = int(state["steps"]), int(state["examples"])
        self.used = None if state["used"] is None else int(state["used"])
        self.history = {k: list(v) for k, v in state["history"].items()}


def memory_cap(model):
    """The largest global batch whose training fits in the memory available now (None when
    the system does not say), the same on every rank: every rank is counted on one node, each
    holding the parameters, gradients, three optimizer arrays (the most any optimizer keeps)
    and the activations of its slice (`gradfit.memory.training_bytes`)."""
    have = available_bytes()
    comm = model.comm
    if comm.size > 1:     # the smallest of the ranks' figures, on every rank (0: unknown)
        figures = np.zeros(comm.size)
        figures[comm.rank] = have or 0
        comm.allreduce_array_(figures)
        have = None if not figures.all() else float(figures.min())
    if have is None:
        return None
    sizes = [model.input_dim] + [layer.output_dim for layer in model.layers
                                 if layer.param_shapes()]
    one = training_bytes(sizes, 1, 3, model.dtype.name)
    two = training_bytes(sizes, 2, 3, model.dtype.name)
    per_example = two["total"] - one["total"]
    fixed = one["total"] - per_example
    # at least 1: a cap below the smallest batch is refused by the controller, which names both
    return max(1, int((have - comm.size * fixed) // max(per_example, 1)))
