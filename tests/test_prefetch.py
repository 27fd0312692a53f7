"""Background prefetch: results in order, a bounded queue, errors at the batch they belong to,
and a clean shutdown whatever stops the consumer (no hung thread, no zombie, no orphan)."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from gradfit.datasets import DatasetError, Prefetcher, Request, pack
from gradfit.datasets import open as open_packed

from conftest import clean_mpi_env

MODES = [dict(workers=0), dict(workers=1), dict(workers=3), dict(workers=2, processes=True)]


def _square(request):
    if request.key == "boom":
        raise KeyError("bad row")
    return request.key ** 2


def _requests(n):
    return (Request(0, k, k) for k in range(n))


def _state(pid):
    """The process's state letter from /proc, or None once it is gone (reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def _prefetch_threads():
    return [t for t in threading.enumerate() if t.name.startswith("gradfit-prefetch")]


def _wait_gone(pids, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(_state(p) in (None, "Z", "X") for p in pids):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_results_come_in_request_order(mode):
    with Prefetcher(_square, _requests(25), depth=3, **mode) as feed:
        got = [(req.step, value) for req, value in feed]
    assert got == [(k, k * k) for k in range(25)]
    assert not _prefetch_threads()


@pytest.mark.parametrize("mode", MODES[1:], ids=str)
def test_an_error_is_raised_at_its_own_request_after_the_good_ones(mode):
    reqs = [Request(0, k, "boom" if k == 4 else k) for k in range(8)]
    seen = []
    with pytest.raises(KeyError, match="bad row"):
        with Prefetcher(_square, reqs, **mode) as feed:
            for req, value in feed:
                seen.append(value)
    assert seen == [0, 1, 4, 9]
    assert not _prefetch_threads()


def test_the_queue_is_bounded_and_the_next_batch_is_prepared_while_one_trains():
    started, lock = [], threading.Lock()

    def fetch(request):
        with lock:
            started.append(request.step)
        return request.step
    with Prefetcher(fetch, _requests(100), depth=2) as feed:
        for req, _ in feed:
            time.sleep(0.01)                   # "training": the next fetches run meanwhile
            assert max(started) <= req.step + 2, "more than `depth` batches were prepared ahead"
            if req.step == 10:
                assert max(started) == 12      # the next two were under way during the step
                break
    assert not _prefetch_threads()


def test_prefetching_a_packed_source_in_threads_and_processes_gives_the_same_batches(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (600, 10), dtype=np.uint8)
    y = np.arange(600) % 7
    pack(x, y, tmp_path / "p", shard_rows=64)
    src = open_packed(tmp_path / "p")
    order = np.random.default_rng(1).permutation(600)
    reqs = [Request(0, k, order[k * 50:(k + 1) * 50]) for k in range(12)]
    for mode in MODES:
        with Prefetcher(src.fetch, reqs, **mode) as feed:
            batches = [b for _, b in feed]
        assert all(np.array_equal(xb, x[r.key].astype(np.float32)) and np.array_equal(yb, y[r.key])
                   for r, (xb, yb) in zip(reqs, batches)), mode


@pytest.mark.parametrize("stop", ["exception", "interrupt", "early stop"])   # NaN stop: a break too
@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_whatever_stops_the_consumer_the_workers_are_released(stop, processes):
    feed = Prefetcher(_square, _requests(10**6), workers=2, processes=processes, depth=4)
    pids = list(feed._pool.pids) if processes else []
    error = {"exception": RuntimeError, "interrupt": KeyboardInterrupt, "early stop": None}[stop]
    try:
        with feed:
            for req, _ in feed:
                if req.step == 5:
                    if error is None:
                        break                  # EarlyStopping, a NaN stop: the loop just leaves
                    raise error("stop")
    except (RuntimeError, KeyboardInterrupt):
        pass
    assert feed._closed
    assert not _prefetch_threads()
    assert all(_state(p) is None for p in pids), "a worker process is still there (or a zombie)"


def test_a_dead_worker_process_is_reported_not_waited_for():
    def reqs():
        for k in range(10**6):
            yield Request(0, k, k)
    feed = Prefetcher(_sleepy, reqs(), workers=1, processes=True, depth=1)
    pid = feed._pool.pids[0]
    with pytest.raises(DatasetError, match=rf"data worker process {pid} died \(killed by SIGKILL\)"):
        with feed:
            for req, _ in feed:
                if req.step == 2:
                    os.kill(pid, signal.SIGKILL)
    assert _state(pid) is None


def _sleepy(request):
    time.sleep(0.05)
    return request.key


def test_an_unpicklable_worker_error_still_arrives_with_its_traceback():
    with pytest.raises(DatasetError, match="_Unpicklable: cannot be pickled") as info:
        with Prefetcher(_raise_unpicklable, _requests(3), workers=1, processes=True) as feed:
            list(feed)
    assert "in a data worker process" in "".join(getattr(info.value, "__notes__", []))


class _Unpicklable(Exception):
    def __init__(self, text, handle):
        super().__init__(text)
        self.handle = handle

    def __reduce__(self):
        raise TypeError("no")


def _raise_unpicklable(request):
    raise _Unpicklable("cannot be pickled", threading.Lock())


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="workers must be an integer >= 0, got -1"):
        Prefetcher(_square, [], workers=-1)
    with pytest.raises(ValueError, match="depth must be an integer >= 1, got 0"):
        Prefetcher(_square, [], depth=0)


# ---------------------------------------------------------------------------- whole processes
CHILD = textwrap.dedent('''
    import sys, time
    from gradfit.datasets import Prefetcher, Request

    def fetch(request):
        time.sleep(0.01)
        return request.key

    feed = Prefetcher(fetch, (Request(0, k, k) for k in range(10**9)), workers=2,
                      processes=True, depth=2)
    print(*feed._pool.pids, flush=True)
    try:
        with feed:
            for req, _ in feed:
                time.sleep(0.01)
    except KeyboardInterrupt:
        print("interrupted, closed", flush=True)
        sys.exit(130)
''')


def _child(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            env=clean_mpi_env(), start_new_session=True)
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert len(pids) == 2 and all(_state(p) for p in pids)
    time.sleep(0.5)                                  # batches are flowing
    return proc, pids


def test_ctrl_c_ends_the_run_and_its_worker_processes(tmp_path):
    proc, pids = _child(tmp_path)
    os.killpg(proc.pid, signal.SIGINT)               # Ctrl-C reaches the whole process group
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted, closed" in out
    assert _wait_gone(pids)


def test_workers_leave_when_their_parent_is_killed(tmp_path):
    proc, pids = _child(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)                # no chance to clean up
    proc.wait(timeout=30)
    assert _wait_gone(pids), "orphaned data workers kept running after their parent died"
