"""A frozen-rank watchdog: end the whole job when a training step stops completing.

A rank that freezes (a deadlock, a stuck file system, a debugger left attached) does not die, so
the MPI launcher never notices: the other ranks wait in ``Allreduce`` forever.  The watchdog is a
daemon thread on every rank; the loop calls ``kick()`` once per completed step.  If no kick comes
within ``timeout`` seconds the thread calls ``comm.abort`` (MPI_Abort: every rank ends) with a
message naming the rank.

Which rank is named.  When rank k freezes, the other ranks are blocked inside a collective
(``comm.in_collective`` is set) and are silent by then too.  A rank *outside* any collective when
its limit passes is the frozen one and aborts at ``timeout``; a rank *waiting* in a collective
gives the frozen rank ``grace`` more seconds to name itself before aborting with a message that
says it was waiting.  (A rank frozen inside C code that holds the GIL cannot run its own
watchdog thread; the waiting ranks then end the job after ``timeout + grace``.)

The timeout comes from the argument, else ``GRADFIT_MPI_TIMEOUT`` (seconds; 0 disables), else
``DEFAULT_TIMEOUT``.  It must exceed the slowest legitimate step, including the first one
(JIT compilation, data loading) and an evaluation epoch if the loop does not kick during it.

>>> with Watchdog(comm, timeout=60) as dog:        # doctest: +SKIP
...     for batch in batches:
...         train_step(batch); dog.kick()
"""
from __future__ import annotations

import os
import threading
import time

DEFAULT_TIMEOUT = 600.0
EXIT_CODE = 75  # EX_TEMPFAIL: the job may succeed when relaunched (it resumes from a checkpoint)


def timeout_from_env(timeout=None, environ=None) -> float:
    """The limit in seconds (0 = off): `timeout`, else GRADFIT_MPI_TIMEOUT, else the default."""
    if timeout is None:
        raw = (os.environ if environ is None else environ).get("GRADFIT_MPI_TIMEOUT", "")
        if not raw.strip():
            return DEFAULT_TIMEOUT
        try:
            timeout = float(raw)
        except ValueError:
            raise ValueError(f"GRADFIT_MPI_TIMEOUT={raw!r} is not a number of seconds; "
                             "use e.g. 600, or 0 to disable the watchdog") from None
        where = f"GRADFIT_MPI_TIMEOUT={raw!r}"
    else:
        where = f"timeout={timeout!r}"
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
        raise ValueError(f"watchdog {where}: expected seconds >= 0 (0 disables)")
    return float(timeout)


class Watchdog:
    """Daemon thread that aborts the job if `kick()` is not called within `timeout` seconds.

    Args:
        comm: the communicator (`rank`, `size`, `abort(message, code)`, optional `in_collective`).
        timeout: seconds without a kick before aborting; None reads GRADFIT_MPI_TIMEOUT; 0 = off.
        grace: extra seconds a rank waiting in a collective allows before aborting
            (default min(timeout, 10)).
        what: the name of the unit of progress, for the message ("training step").
        on_timeout: called with the message instead of ``comm.abort`` (tests).
    """

    def __init__(self, comm, timeout=None, grace=None, what="training step", on_timeout=None):
        self.comm = comm
        self.timeout = timeout_from_env(timeout)
        self.grace = min(self.timeout, 10.0) if grace is None else float(grace)
        if self.grace < 0:
            raise ValueError(f"grace must be >= 0 seconds, got {grace!r}")
        self.what = what
        self.on_timeout = on_timeout
        self.steps = 0
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._thread = None
        self.fired = None  # the message, once fired

    @property
    def enabled(self) -> bool:
        return self.timeout > 0

    def start(self) -> "Watchdog":
        """Start the thread (a no-op when disabled or already running)."""
        if self.enabled and self._thread is None:
            self._last = time.monotonic()
            self._thread = threading.Thread(target=self._run, name="gradfit-watchdog", daemon=True)
            self._thread.start()
        return self

    def kick(self) -> None:
        """Record that one step completed (cheap: one clock read)."""
        self.steps += 1
        self._last = time.monotonic()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def _run(self):
        poll = min(0.25, self.timeout / 8)
        while not self._stop.wait(poll):
            idle = time.monotonic() - self._last
            waiting = getattr(self.comm, "in_collective", None)
            limit = self.timeout + (self.grace if waiting else 0.0)
            if idle >= limit:
                self._fire(idle, waiting)
                return

    def _fire(self, idle, waiting):
        setting = f"limit {self.timeout:g} s; raise it with GRADFIT_MPI_TIMEOUT=seconds"
        if waiting:
            msg = (f"watchdog: waited {idle:.1f} s in {waiting} for the other ranks after "
                   f"{self.what} {self.steps} ({setting}); another rank is frozen or dead. "
                   "Aborting the whole job.")
        else:
            msg = (f"watchdog: this rank is frozen: no {self.what} completed for {idle:.1f} s "
                   f"after {self.what} {self.steps} ({setting}). Aborting the whole job.")
        self.fired = msg
        if self.on_timeout is not None:
            self.on_timeout(msg)
        else:
            self.comm.abort(msg, code=EXIT_CODE)
