"""CSVLogger: one row per epoch with every logged value (Keras 3's format), resumable."""
from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable

import numpy as np

from gradfit.callbacks.base import Callback, is_chief


def _cell(v):
    """Keras's ``handle_value``: strings as is, 1-D iterables as ``"[a, b]"``."""
    if isinstance(v, str):
        return v
    if isinstance(v, Iterable) and not (isinstance(v, np.ndarray) and v.ndim == 0):
        return f'"[{", ".join(map(str, v))}]"'
    return v


class CSVLogger(Callback):
    """Append ``epoch`` and the epoch logs to a CSV file after every epoch (rank 0 writes).

    Columns, fixed by the first epoch's logs as Keras: ``epoch``, then the keys sorted; when no
    key starts with ``val_``, a ``val_<key>`` column is added for each (Keras does so, so the
    validation columns exist if validation starts later); missing values are written ``NA``.

    ``append=False`` truncates the file at the start of training, ``append=True`` appends (and
    writes a header only if the file is empty). The file is opened at the first epoch end and
    flushed after every row. Resuming: ``get_state`` holds the columns and the file size after
    the last row written; ``set_state`` truncates the file back to that size, so rows logged
    after the backup (by the run that was killed) are not duplicated.
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        if not isinstance(filename, (str, os.PathLike)):
            raise TypeError(f"CSVLogger: filename must be a path, got {filename!r}")
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"CSVLogger: separator must be one character, got {separator!r}")
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = bool(append)
        self.keys = None
        self.offset = 0                # file size after the last row written
        self._needs_header = True
        self._truncate = False

    def on_train_begin(self, logs=None):
        self.keys = None
        if self.append and os.path.exists(self.filename):
            self._needs_header = os.path.getsize(self.filename) == 0
            self.offset = os.path.getsize(self.filename)
        else:
            self._needs_header, self.offset = True, 0
        self._truncate = not self.append

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs.keys())
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys += [f"val_{k}" for k in self.keys]
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter=self.sep, lineterminator="\r\n")   # csv.excel's
        if self._needs_header:
            writer.writerow(["epoch"] + self.keys)
        writer.writerow([epoch] + [_cell(logs.get(k, "NA")) for k in self.keys])
        if is_chief(self.model):
            mode = "w" if self._truncate else "a"
            with open(self.filename, mode, newline="", encoding="utf-8") as f:
                f.write(buf.getvalue())
                f.flush()
                self.offset = f.tell()
        self._needs_header = self._truncate = False

    def get_state(self) -> dict:
        return {"keys": self.keys, "offset": self.offset, "needs_header": self._needs_header}

    def set_state(self, state: dict) -> None:
        self.keys = None if state["keys"] is None else list(state["keys"])
        self.offset = int(state["offset"])
        self._needs_header = bool(state["needs_header"])
        self._truncate = False
        if is_chief(self.model) and os.path.exists(self.filename):
            if os.path.getsize(self.filename) < self.offset:
                raise ValueError(
                    f"CSVLogger: {self.filename} holds {os.path.getsize(self.filename)} bytes "
                    f"but the backup recorded {self.offset}; the log was changed since the "
                    "backup - move it away to start a new one"
                )
            with open(self.filename, "r+b") as f:
                f.truncate(self.offset)
        elif is_chief(self.model) and self.offset > 0:
            self._needs_header = True       # the log was deleted: start it again
