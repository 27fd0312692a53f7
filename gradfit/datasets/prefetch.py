"""Background prefetch: batch k+1 is read, decoded and converted while batch k trains.

`Prefetcher(fetch, requests)` yields ``(request, fetch(request))`` in the order of
``requests``, keeping up to ``depth`` fetches in flight (at least one per worker) in

* one or more **threads** (the default: numpy releases the GIL in file reads, dtype
  conversion and BLAS, so reading overlaps the training step), or
* **worker processes** (``processes=True``, for decoding that holds the GIL), started with
  the platform's default method as Keras's ``use_multiprocessing`` (``fork`` on Linux; pass
  ``start_method="spawn"`` for a clean interpreter per worker); ``fetch`` and the requests
  travel to them (a source is pickled without its open files), results come back pickled;
* nothing (``workers=0``): each fetch runs when its result is asked for.

Memory stays flat: at most ``max(depth, workers)`` results wait. An exception raised by a
fetch is raised again when the consumer reaches that request (the batches before it train
as usual), with the worker's traceback attached.

Shutdown is always clean, whatever ends the iteration (the end of the requests, an exception
in the consumer or a fetch, Ctrl-C, an early stop, a NaN stop): use it as a context manager
(or call `close`). `close` drops what was prefetched, stops the threads, asks worker
processes to exit, terminates (then kills) any that do not within ``join_timeout`` seconds,
and reaps them: no hung worker, no zombie. Worker processes ignore Ctrl-C (the consumer
handles it and closes them), exit by themselves when their parent dies (SIGKILL), and a
worker that dies is reported (its exit code or signal) instead of waited for.
"""
from __future__ import annotations

import collections
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import time
import traceback

from ..checks import check_int
from .base import DatasetError

_POLL_S = 0.1


class Prefetcher:
    """Iterate ``(request, fetch(request))`` over ``requests``, prepared ahead in the
    background (see the module docstring)."""

    def __init__(self, fetch, requests, *, workers: int = 1, processes: bool = False,
                 depth: int = 2, start_method: str | None = None, join_timeout: float = 2.0):
        workers, depth = check_int("workers", workers, 0), check_int("depth", depth, 1)
        self.fetch = fetch
        self.requests = iter(requests)
        self.depth = max(depth, workers)
        self.join_timeout = join_timeout
        self._pending = collections.deque()   # (seq, request) submitted, not yet delivered
        self._done = {}                       # seq -> (ok, payload) arrived out of order
        self._seq = 0
        self._closed = False
        self._exhausted = False
        if workers == 0:
            self._pool = None
        elif processes:
            self._pool = _ProcessPool(fetch, workers, start_method)
        else:
            self._pool = _ThreadPool(fetch, workers)

    def __iter__(self):
        return self

    def __next__(self):
        if self._closed:
            raise StopIteration
        self._fill()
        if not self._pending:
            raise StopIteration
        seq, request = self._pending.popleft()
        if self._pool is None:
            return request, self.fetch(request)
        ok, payload = self._wait(seq, request)
        self._fill()             # keep the next batches coming while this one trains
        if not ok:
            raise _with_note(*payload)
        return request, payload

    def _fill(self):
        while not self._exhausted and len(self._pending) < (self.depth if self._pool else 1):
            try:
                request = next(self.requests)
            except StopIteration:
                self._exhausted = True
                return
            if self._pool is not None:
                self._pool.submit(self._seq, request)
            self._pending.append((self._seq, request))
            self._seq += 1

    def _wait(self, seq, request):
        while seq not in self._done:
            try:
                got, ok, payload = self._pool.results.get(timeout=_POLL_S)
            except queue.Empty:
                self._pool.check_alive(request)
                continue
            self._done[got] = (ok, payload)
        return self._done.pop(seq)

    # -- shutdown -------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop prefetching and release every worker (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._pending.clear()
        self._done.clear()
        if self._pool is not None:
            self._pool.close(self.join_timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class _ThreadPool:
    """Daemon threads taking (seq, request) tasks; results go to one queue."""

    def __init__(self, fetch, workers):
        self.tasks, self.results = queue.Queue(), queue.Queue()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=_thread_main, name=f"gradfit-prefetch-{i}",
                                         args=(fetch, self.tasks, self.results, self.stop),
                                         daemon=True) for i in range(workers)]
        for t in self.threads:
            t.start()

    def submit(self, seq, request):
        self.tasks.put((seq, request))

    def check_alive(self, request):
        if not any(t.is_alive() for t in self.threads):
            raise DatasetError(f"{_where(request)}: the prefetch threads stopped unexpectedly")

    def close(self, timeout):
        self.stop.set()
        for _ in self.threads:
            self.tasks.put(None)
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        # a fetch blocked for longer (a user __getitem__ that never returns) is left to its
        # daemon thread: it cannot be killed, but it holds nothing and never delays exit


def _thread_main(fetch, tasks, results, stop):
    while (item := tasks.get()) is not None:
        if stop.is_set():
            continue
        seq, request = item
        try:
            results.put((seq, True, fetch(request)))
        except BaseException as exc:        # delivered to the consumer, in order
            results.put((seq, False, (exc, None)))


class _ProcessPool:
    """Worker processes taking (seq, request) tasks; see the module docstring."""

    def __init__(self, fetch, workers, start_method):
        ctx = multiprocessing.get_context(start_method)
        self.tasks, self.results = ctx.Queue(), ctx.Queue()
        self.procs = [ctx.Process(target=_process_main, name=f"gradfit-data-worker-{i}",
                                  args=(fetch, self.tasks, self.results, os.getpid()),
                                  daemon=True) for i in range(workers)]
        for p in self.procs:
            p.start()

    @property
    def pids(self):
        return [p.pid for p in self.procs]

    def submit(self, seq, request):
        self.tasks.put((seq, request))

    def check_alive(self, request):
        for p in self.procs:
            if p.exitcode is not None:
                how = (f"killed by {signal.Signals(-p.exitcode).name}" if p.exitcode < 0
                       else f"exit code {p.exitcode}")
                raise DatasetError(f"{_where(request)}: data worker process {p.pid} died "
                                   f"({how}) while preparing batches; look for an error it "
                                   f"printed, or for the out-of-memory killer (dmesg)")

    def close(self, timeout):
        for _ in self.procs:
            try:
                self.tasks.put_nowait(None)
            except (ValueError, OSError):
                break
        deadline = time.monotonic() + timeout
        for p in self.procs:
            p.join(max(0.0, deadline - time.monotonic()))
        for p in self.procs:
            if p.is_alive():
                p.terminate()
        for p in self.procs:
            p.join(1.0)
            if p.is_alive():
                p.kill()
                p.join()
        for q in (self.tasks, self.results):
            q.cancel_join_thread()      # never block exit flushing data nobody will read
            q.close()


def _process_main(fetch, tasks, results, parent):
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C is the consumer's to handle
    results.cancel_join_thread()                    # exit even if a result is still unsent
    while True:
        try:
            item = tasks.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:              # the parent died (SIGKILL): leave too
                return
            continue
        if item is None:
            return
        seq, request = item
        try:
            results.put((seq, True, fetch(request)))
        except BaseException as exc:
            results.put((seq, False, _portable(exc)))


def _portable(exc: BaseException):
    """(the exception, or a DatasetError with its text if it does not pickle; the worker's
    traceback as text): sent apart, since pickling keeps only an exception's arguments."""
    text = f"in a data worker process (pid {os.getpid()}):\n" + "".join(
        traceback.format_exception(exc))
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        exc = DatasetError(f"{type(exc).__name__}: {exc}")
    return exc, text


def _with_note(exc: BaseException, text: str | None) -> BaseException:
    if text and hasattr(exc, "add_note"):
        exc.add_note(text)
    return exc


def _where(request) -> str:
    return getattr(request, "where", f"request {request!r}")
