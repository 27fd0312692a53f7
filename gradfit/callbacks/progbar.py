"""ProgbarLogger: the progress display of ``fit`` (and of ``evaluate`` outside fit).

verbose, as Keras 3's ``fit``:

* ``0``: silent.
* ``1``: a line ``Epoch 3/10`` then a bar redrawn in place after the batches, with the step
  count, the ETA and the batch logs (``loss``), finished at the epoch end with the epoch time,
  time per step and the epoch logs (``loss``, metrics, ``val_*``). When the stream is not a
  terminal the bar is not redrawn: only the finished line is printed.
* ``2``: one line per epoch: ``Epoch 3/10 - 32/32 - 1s - 31ms/step - loss: 0.2103 - ...``.
* When the steps per epoch are not known beforehand (``batch_size="auto"``: the batch grows),
  the bar has no total: ``17/Unknown`` while the epoch runs, ``40/40`` at its end.
* ``True``/``False`` are 1/0 (as in Keras, where ``True == 1``).
* ``"auto"`` (the default): 1 when the stream is a terminal, else 2 (log files and CI get one
  line per epoch).

If ``params`` holds a ``"summary"`` string (the loop's description of the batching, the
effective batch size...), it is printed once at the start of training. Only rank 0 prints.
"""
from __future__ import annotations

import sys
import time

from gradfit.callbacks.base import Callback, is_chief

_VERBOSE = (0, 1, 2, "auto")
BAR_WIDTH = 30


def _check_verbose(verbose):
    if isinstance(verbose, bool):          # Keras: True == 1, False == 0
        return int(verbose)
    if verbose not in _VERBOSE:
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return verbose


def format_value(v) -> str:
    """Keras's number format: 4 decimals, or scientific notation below 1e-3; an int as it is
    (a batch size)."""
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    return f"{v:.4f}" if abs(v) > 1e-3 else f"{v:.4e}"


def format_logs(logs) -> str:
    return "".join(f" - {k}: {format_value(v)}" for k, v in (logs or {}).items())


def format_duration(seconds: float) -> str:
    """``7s``, ``2:05`` or ``1:02:05`` (Keras's ETA format)."""
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}:{(s % 3600) // 60:02d}:{s % 60:02d}"
    if s >= 60:
        return f"{s // 60}:{s % 60:02d}"
    return f"{s}s"


def format_per_step(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


class ProgbarLogger(Callback):
    """Prints training progress; added by ``fit`` unless ``verbose=0``.

    Args:
        verbose: 0, 1, 2, "auto", or None to take ``params["verbose"]`` (default "auto").
        stream: where to print (default ``sys.stdout`` at print time).
        interval: least seconds between two redraws of the bar (verbose 1 on a terminal).
    """

    def __init__(self, verbose=None, stream=None, interval=0.05):
        super().__init__()
        self._verbose_arg = None if verbose is None else _check_verbose(verbose)
        self._stream = stream
        self.interval = float(interval)
        self.verbose = 1
        self.epochs = 1
        self.target = None
        self._in_fit = False
        self._reset()

    # -- set-up
    @property
    def stream(self):
        return self._stream if self._stream is not None else sys.stdout

    def _is_tty(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        try:
            return bool(isatty and isatty())
        except ValueError:          # closed stream
            return False

    def set_params(self, params):
        super().set_params(params)
        verbose = self._verbose_arg
        if verbose is None:
            verbose = _check_verbose(self.params.get("verbose", "auto"))
        if verbose == "auto":
            verbose = 1 if self._is_tty() else 2
        self.verbose = verbose
        self.epochs = self.params.get("epochs") or 1
        self.target = self.params.get("steps")

    def _reset(self):
        self.seen = 0
        self._first = None             # first batch index seen (> 0 when resumed mid-epoch)
        self._start = time.perf_counter()
        self._last_draw = float("-inf")
        self._width = 0
        self._batch_logs = {}

    def _write(self, text: str) -> None:
        if is_chief(self.model):
            self.stream.write(text)
            self.stream.flush()

    # -- hooks
    def on_train_begin(self, logs=None):
        self._in_fit = True
        summary = self.params.get("summary")
        if self.verbose and summary:
            self._write(f"{summary}\n")

    def on_train_end(self, logs=None):
        self._in_fit = False

    def on_epoch_begin(self, epoch, logs=None):
        self._reset()
        self._epoch = epoch
        if self.verbose == 1 and self.epochs > 1:
            self._write(f"Epoch {epoch + 1}/{self.epochs}\n")

    def on_train_batch_end(self, batch, logs=None):
        self._update(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._finish(logs, prefix=f"Epoch {epoch + 1}/{self.epochs} - " if self.verbose == 2
                     else "")

    def on_test_begin(self, logs=None):
        if not self._in_fit:
            self._reset()

    def on_test_batch_end(self, batch, logs=None):
        if not self._in_fit:
            self._update(batch, logs)

    def on_test_end(self, logs=None):
        if not self._in_fit:
            self._finish(logs, prefix="")

    # -- drawing
    def _counter(self, current: int, final: bool = False) -> str:
        if self.target:
            return f"{current:>{len(str(self.target))}d}/{self.target}"
        # steps per epoch not known beforehand (batch_size="auto"): a count while the epoch
        # runs, and the epoch's own count at its end (as Keras finishes an unknown target)
        return f"{current}/{current}" if final else f"{current}/Unknown"

    def _bar(self, current: int) -> str:
        if not self.target:
            return ""
        done = int(BAR_WIDTH * min(current, self.target) / self.target)
        arrow = ">" if done < BAR_WIDTH else ""
        return " [" + "=" * done + arrow + "." * (BAR_WIDTH - done - len(arrow)) + "]"

    def _done(self) -> int:
        """Batches run since the epoch (or the resumed part of it) began, at least 1."""
        return max(self.seen - (self._first or 0), 1)

    def _update(self, batch, logs):
        if self._first is None:
            self._first = batch
        self.seen = batch + 1
        self._batch_logs = dict(logs or {})
        if self.verbose != 1 or not self._is_tty():
            return
        now = time.perf_counter()
        if now - self._last_draw < self.interval:
            return
        self._last_draw = now
        elapsed = now - self._start
        line = self._counter(self.seen) + self._bar(self.seen)
        if self.target:
            eta = elapsed / self._done() * (self.target - self.seen)
            line += f" - ETA: {format_duration(eta)}"
        line += format_logs(self._batch_logs)
        pad = " " * max(0, self._width - len(line))
        self._width = len(line)
        self._write("\r" + line + pad)

    def _finish(self, logs, prefix: str):
        if self.verbose == 0:
            return
        elapsed = time.perf_counter() - self._start
        steps = self.target or self.seen
        line = prefix + self._counter(steps, final=True)
        if self.verbose == 1:
            line += self._bar(steps)
        line += f" - {elapsed:.0f}s - {format_per_step(elapsed / self._done())}"
        line += format_logs(logs if logs else self._batch_logs)
        pad = " " * max(0, self._width - len(line))
        self._width = 0
        self._write(("\r" if self.verbose == 1 and self._is_tty() else "") + line + pad + "\n")
