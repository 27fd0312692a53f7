"""The callback protocol (Keras 3's) and `MonitorCallback`.

A training loop drives callbacks through one `CallbackList` (`callback_list.py`)::

    cbs = CallbackList(callbacks, add_history=True, add_progbar=verbose != 0,
                       model=model, verbose=verbose, epochs=epochs, steps=steps_per_epoch)
    cbs.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        cbs.on_epoch_begin(epoch)
        for step in range(steps_per_epoch):
            cbs.on_train_batch_begin(step)
            ...                                   # forward, backward, update
            cbs.on_train_batch_end(step, {"loss": loss})
        cbs.on_epoch_end(epoch, logs)             # logs: loss, metrics, val_*, learning_rate
        if model.stop_training:
            break
    cbs.on_train_end(logs)

Resuming: every callback has ``get_state() -> dict`` and ``set_state(dict)`` (values are
JSON-able or numpy arrays). ``on_train_begin`` resets a callback (so one instance can serve
several ``fit`` calls, as in Keras), hence a resumed run calls ``set_state`` *after*
``on_train_begin``. `CallbackList.get_state`/`set_state` do it for the whole list.

Only rank 0 (``model.comm.rank``) prints or writes files; every rank takes the same decisions,
since the logs are identical on all ranks.
"""
from __future__ import annotations

import sys
import warnings

import numpy as np

from .. import checks


# ----------------------------------------------------------------------------- helpers
def is_chief(model) -> bool:
    """True on the process that prints and writes files (rank 0; a model without comm is)."""
    comm = getattr(model, "comm", None)
    return int(getattr(comm, "rank", 0)) == 0


def print_msg(model, msg: str, stream=None) -> None:
    """Print `msg` on rank 0 only, flushed (so messages interleave correctly with the bar)."""
    if is_chief(model):
        print(msg, file=stream or sys.stdout, flush=True)


def check_int(owner: str, name: str, value, minimum: int = 0) -> int:
    """`value` as an int >= minimum (`gradfit.checks.check_int`, the callback named)."""
    return checks.check_int(name, value, minimum, owner=owner)


def check_number(owner: str, name: str, value, minimum: float | None = None) -> float:
    """`value` as a finite float >= minimum (`gradfit.checks.check_number`, the callback named)."""
    return checks.check_number(name, value, minimum, owner=owner)


def to_host(a) -> np.ndarray:
    """A numpy copy of a numpy or cupy array (state must be host data)."""
    if not isinstance(a, np.ndarray) and hasattr(a, "get"):
        a = a.get()
    return np.array(a, copy=True)


def float_learning_rate(optimizer, owner: str) -> float:
    """The optimizer's learning rate as a float; a clear error when it is a schedule."""
    if optimizer is None or not hasattr(optimizer, "learning_rate"):
        raise ValueError(f"{owner} needs model.optimizer.learning_rate; compile the model first")
    lr = optimizer.learning_rate
    if callable(lr):
        raise TypeError(
            f"{owner} sets a float learning rate, but the optimizer's learning_rate is a "
            f"schedule ({lr!r}); compile with a float learning_rate or drop {owner}"
        )
    return float(lr)


# ----------------------------------------------------------------------------- Callback
class Callback:
    """Base class: every hook does nothing. Subclasses override the hooks they need.

    Attributes: ``model`` (set by `set_model`), ``params`` (dict set by `set_params`:
    ``verbose``, ``epochs``, ``steps`` as Keras).
    """

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = dict(params or {})

    # resumable state: JSON-able values or numpy arrays
    def get_state(self) -> dict:
        """The state a resumed run needs (empty for stateless callbacks)."""
        return {}

    def set_state(self, state: dict) -> None:
        """Restore what `get_state` returned. Call after ``on_train_begin``."""
        if state:
            raise ValueError(f"{type(self).__name__} holds no state, got keys {sorted(state)}")

    # hooks (Keras 3 names)
    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_batch_begin(self, batch, logs=None): pass
    def on_batch_end(self, batch, logs=None): pass

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)   # Keras: on_batch_* are aliases

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass


# ----------------------------------------------------------------------------- MonitorCallback
_UP_WORDS = ("acc", "auc", "precision", "recall", "f1", "iou", "r2")
_DOWN_NAMES = {
    "mae", "mse", "rmse", "mape", "msle", "mean_absolute_error", "mean_squared_error",
    "root_mean_squared_error", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "crossentropy", "categorical_crossentropy",
    "sparse_categorical_crossentropy", "binary_crossentropy", "hinge", "squared_hinge",
    "kl_divergence", "poisson", "log_cosh", "huber",
}


def infer_mode(monitor: str):
    """'min', 'max' or None for a monitored name, as Keras 3's mode="auto" decides.

    Keras 3 takes ``monitor`` without its ``val_`` prefix: ``loss`` is minimised; any other name
    is looked up among the compiled metrics, whose ``_direction`` is "up" for accuracy, AUC,
    precision, recall, F1, IoU, R2 and "down" for error metrics (mae, mse, crossentropy...).
    gradfit has no metric objects on the model, so the same table is written here by name.
    """
    name = monitor[4:] if monitor.startswith("val_") else monitor
    if name == "loss" or name.endswith("_loss") or name in _DOWN_NAMES:
        return "min"
    if any(w in name for w in _UP_WORDS):
        return "max"
    return None


class MonitorCallback(Callback):
    """Base of callbacks that watch one logged quantity: EarlyStopping, ReduceLROnPlateau,
    ModelCheckpoint. Holds ``monitor``, ``mode``, ``min_delta``, ``best``, ``monitor_op``.

    Improvement (Keras 3 ``MonitorCallback._is_improvement``), with ``d = |min_delta|``::

        mode "min":  current - (-d) <  reference   i.e. current <  reference - d
        mode "max":  current -   d  >  reference   i.e. current >  reference + d

    strict, so ties are not improvements; any value improves on ``reference=None``. Keras
    compares with ``keras.ops.less/greater``, which cast Python floats to floatx (float32):
    we compare in float32 too, so two values that round to one float32 are a tie in both.
    Differences from Keras, chosen to fail early: an unknown ``mode`` or a negative
    ``min_delta`` raises (Keras warns / takes ``abs``), and mode="auto" on a name whose
    direction cannot be inferred raises at construction (Keras raises at the first epoch end).
    """

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        owner = type(self).__name__
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"{owner}: monitor must be a metric name such as 'val_loss', "
                            f"got {monitor!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{owner}: unknown mode {mode!r}; use 'auto', 'min' or 'max'")
        min_delta = check_number(owner, "min_delta", min_delta, minimum=0.0)
        if mode == "auto":
            mode_used = infer_mode(monitor)
            if mode_used is None:
                raise ValueError(
                    f"{owner} received monitor={monitor!r}, whose direction cannot be inferred; "
                    "pass mode='max' to monitor the highest value or mode='min' for the lowest"
                )
        else:
            mode_used = mode
        self.monitor = monitor
        self.mode = mode
        self.best = None if baseline is None else check_number(owner, "baseline", baseline)
        self.monitor_op = np.less if mode_used == "min" else np.greater
        self.min_delta = -min_delta if mode_used == "min" else min_delta

    def _is_improvement(self, monitor_value, reference_value) -> bool:
        if reference_value is None:
            return True
        return bool(self.monitor_op(np.float32(monitor_value - self.min_delta),
                                    np.float32(reference_value)))

    def _monitor_value(self, logs, what: str):
        """``logs[monitor]`` or None with Keras's warning listing the available keys."""
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"{what} conditioned on metric `{self.monitor}` which is not available. "
                f"Available metrics are: {','.join(list(logs.keys()))}",
                stacklevel=3,
            )
        return value
