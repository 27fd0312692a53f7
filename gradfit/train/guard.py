"""What guards a run of the loop: Ctrl-C/SIGTERM handling and, under MPI, the watchdog.

`guarded_run(model, state)` is the context the loop runs in. It installs
`graceful_interrupts`, starts the MPI `Watchdog` (a frozen or dead rank ends the job after
GRADFIT_MPI_TIMEOUT seconds instead of a hang; the loop calls the ``kick`` it yields after
every step) and, whatever happens, stops the watchdog and clears the model's data-parallel
shard (dropout) on the way out.

Ctrl-C and SIGTERM during ``fit``: stop after the step in progress, keep what was trained.

A signal that lands in the middle of a step could leave the weights half updated (the numpy
optimizer path writes them chunk by chunk), and under MPI a rank that stops alone leaves the
others waiting in the Allreduce. So the first SIGINT or SIGTERM only sets
``state.interrupt_requested``; `train_step` carries that request through the step's Allreduce
and every rank stops after the same whole step, with ``state.stop_reason = "interrupted"``. The
loop then ends as after early stopping (``on_train_end`` runs: best weights are restored,
`BackupAndRestore` writes a backup at the exact position so that running the same command
again resumes it). A second Ctrl-C raises KeyboardInterrupt at once, as Python would.

This is Lightning's graceful shutdown, not Keras's (where KeyboardInterrupt escapes ``fit``):
``fit`` returns, and ``model.train_state.stop_reason`` says how it ended. Handlers are
installed only from the main thread (Python's rule), and the previous ones are put back.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading

from ..callbacks.base import print_msg
from ..parallel import Watchdog

SIGNALS = ("SIGINT", "SIGTERM")


@contextlib.contextmanager
def graceful_interrupts(state, announce=None):
    """Within the block, SIGINT/SIGTERM set ``state.interrupt_requested`` (see the module).

    ``announce(message)`` is called once, at the first signal (the loop prints it on rank 0).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def handler(signum, frame):
        if state.interrupt_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt          # the second Ctrl-C: stop now
        if not state.interrupt_requested and announce is not None:
            name = signal.Signals(signum).name
            announce(f"{name}: stopping after the current step (Ctrl-C again to stop at once)")
        state.interrupt_requested = True

    for name in SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None:
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)



@contextlib.contextmanager
def deferred_interrupts():
    """Within the block, SIGINT / SIGTERM are held back: the block finishes (files being
    written are written whole) and yields a list that then names the signals received."""
    received, previous = [], {}
    if threading.current_thread() is threading.main_thread():
        for name in SIGNALS:
            sig = getattr(signal, name, None)
            if sig is not None:
                previous[sig] = signal.signal(sig, lambda signum, frame: received.append(
                    signal.Signals(signum).name))
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)


@contextlib.contextmanager
def guarded_run(model, state):
    """The loop's context (see the module docstring); yields ``kick()``, called after a step."""
    watchdog = Watchdog(model.comm).start() if model.comm.size > 1 else None
    try:
        with graceful_interrupts(state, lambda msg: print_msg(model, msg, sys.stderr)):
            yield (watchdog.kick if watchdog is not None else _nothing)
    finally:
        if watchdog is not None:
            watchdog.stop()
        model.set_shard(0, None)


def _nothing():
    pass
