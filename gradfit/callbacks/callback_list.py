"""`CallbackList`: calls every callback's hook, in Keras 3's order, with one dict of logs."""
from __future__ import annotations

import numpy as np

from gradfit.callbacks.base import Callback
from gradfit.callbacks.history import History
from gradfit.callbacks.progbar import ProgbarLogger

_HOOKS = (
    "on_train_begin", "on_train_end", "on_test_begin", "on_test_end",
    "on_predict_begin", "on_predict_end",
)
_INDEXED_HOOKS = (
    "on_epoch_begin", "on_epoch_end", "on_train_batch_begin", "on_train_batch_end",
    "on_test_batch_begin", "on_test_batch_end", "on_predict_batch_begin", "on_predict_batch_end",
)


def _pythonify(logs):
    """A fresh dict per call (as Keras), numpy/0-d scalars turned into Python floats."""
    out = {}
    for k, v in (logs or {}).items():
        if isinstance(v, np.ndarray) and v.ndim == 0 or isinstance(v, np.generic):
            v = v.item()
        elif hasattr(v, "ndim") and getattr(v, "ndim") == 0 and hasattr(v, "item"):  # cupy
            v = v.item()
        out[k] = v
    return out


class CallbackList(Callback):
    """Calls each callback's hook in order; one dict of logs per hook call, shared by all.

    As in Keras 3: user callbacks first, then a `History` (``add_history``) and a
    `ProgbarLogger` (``add_progbar``) unless the list already holds one. A callback that
    writes into ``logs`` (ReduceLROnPlateau adds ``learning_rate``) is seen by those after it.

    Callbacks with ``run_last = True`` (`BackupAndRestore`) see every hook after all the
    others, in their given order: a backup written at ``on_epoch_end`` then holds every other
    callback's state after that epoch, and a run restored in ``on_train_begin`` is restored
    after every other callback has reset itself there.
    """

    def __init__(self, callbacks=None, add_history=False, add_progbar=False, model=None,
                 **params):
        super().__init__()
        callbacks = list(callbacks or [])
        for i, cb in enumerate(callbacks):
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"callbacks[{i}] is {cb!r} ({type(cb).__name__}); pass instances of "
                    "gradfit.callbacks.Callback, e.g. EarlyStopping(patience=10)"
                )
        self.callbacks = callbacks
        self.history = next((c for c in callbacks if isinstance(c, History)), None)
        self.progbar = next((c for c in callbacks if isinstance(c, ProgbarLogger)), None)
        if self.history is None and add_history:
            self.history = History()
            self.callbacks.append(self.history)
        if self.progbar is None and add_progbar:
            self.progbar = ProgbarLogger()
            self.callbacks.append(self.progbar)
        self.callbacks.sort(key=lambda cb: bool(getattr(cb, "run_last", False)))  # stable
        if model is not None:
            self.set_model(model)
        self.set_params(params)

    def append(self, callback):
        self.callbacks.append(callback)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self):
        return len(self.callbacks)

    def set_model(self, model):
        self.model = model
        for cb in self.callbacks:
            cb.set_model(model)

    def set_params(self, params):
        self.params = dict(params or {})
        for cb in self.callbacks:
            cb.set_params(self.params)

    def _keys(self):
        """``ClassName#k``: the k-th callback of that class (stable when others are added)."""
        seen, keys = {}, []
        for cb in self.callbacks:
            name = type(cb).__name__
            seen[name] = seen.get(name, 0) + 1
            keys.append(f"{name}#{seen[name]}")
        return keys

    def get_state(self) -> dict:
        """``{"<ClassName>#<k>": state}`` for every callback that holds state."""
        states = {k: cb.get_state() for k, cb in zip(self._keys(), self.callbacks)}
        return {k: v for k, v in states.items() if v}

    def set_state(self, state: dict) -> None:
        """Restore every callback's state; a callback without saved state must hold none (a
        progress bar, a callback added on resume), and no saved state may be left unused."""
        keys = self._keys()
        lost = sorted(set(state) - set(keys))
        missing = [k for k, cb in zip(keys, self.callbacks) if k not in state and cb.get_state()]
        if lost or missing:
            raise ValueError(
                f"the saved callback states are for {sorted(state)}, but this run "
                + (f"has no {', '.join(lost)}" if lost else f"adds {', '.join(missing)}, which "
                   "hold state") + "; resume with the callbacks of the run being resumed")
        for k, cb in zip(keys, self.callbacks):
            if k in state:
                cb.set_state(state[k])


def _make_hook(name, indexed):
    if indexed:
        def hook(self, index, logs=None):
            logs = _pythonify(logs)
            for cb in self.callbacks:
                getattr(cb, name)(index, logs)
    else:
        def hook(self, logs=None):
            logs = _pythonify(logs)
            for cb in self.callbacks:
                getattr(cb, name)(logs)
    hook.__name__ = name
    return hook


for _name in _HOOKS:
    setattr(CallbackList, _name, _make_hook(_name, False))
for _name in _INDEXED_HOOKS:
    setattr(CallbackList, _name, _make_hook(_name, True))
