"""History: records every epoch's logs; ``model.fit`` returns it."""
from __future__ import annotations

from gradfit.callbacks.base import Callback


class History(Callback):
    """``history.history[key]`` is the list of ``logs[key]`` over epochs (Keras 3).

    ``history.epoch`` lists the epoch indices seen in the current fit; ``history.history``
    is *not* cleared by ``on_train_begin`` (Keras creates a new History per fit). After each
    epoch ``model.history`` is set to this object, as Keras does.
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        if self.model is not None:
            try:
                self.model.history = self
            except AttributeError:      # a model that forbids new attributes
                pass

    def get_state(self) -> dict:
        return {"epoch": list(self.epoch), "history": {k: list(v) for k, v in self.history.items()}}

    def set_state(self, state: dict) -> None:
        self.epoch = [int(e) for e in state["epoch"]]
        self.history = {k: list(v) for k, v in state["history"].items()}
