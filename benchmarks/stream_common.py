"""Shared by the streaming benchmarks (stream_make, stream_bench, stream_ranks,
block_shuffle_quality): the RssAnon sampler, the network, training over a source with
``model.fit(source, ...)``.
"""
import os
import re
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))                 # run from a checkout

import gradfit  # noqa: E402
from gradfit.parallel import launch  # noqa: E402

# this project's environment forces an old OpenBLAS kernel; measure numpy as a user runs it
# (see benchmarks/data_parallel.py)
STRIPPED_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
LAYERS = (784, 512, 512, 10)


def rss_anon_mib() -> float:
    """This process's anonymous resident memory (RssAnon of /proc/self/status), in MiB."""
    with open("/proc/self/status") as f:
        return int(re.search(r"RssAnon:\s+(\d+) kB", f.read()).group(1)) / 1024


class PeakSampler:
    """Samples RssAnon every ``interval`` seconds in a thread; ``peak`` is the largest seen."""

    def __init__(self, interval=0.01):
        self.interval, self.peak, self.samples = interval, rss_anon_mib(), 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_anon_mib())
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_anon_mib())


def build_model(row_shape=(28, 28), layers=LAYERS[1:], seed=0, dtype="float32"):
    """Input(row_shape) -> Flatten -> Dense(512, relu) -> Dense(512, relu) -> Dense(10, softmax),
    Adam: the 784-512-512-10 network of the issue, taking 28x28 images as Keras does."""
    gradfit.set_random_seed(seed)
    net = [gradfit.Input(shape=tuple(row_shape)), gradfit.Flatten()]
    net += [gradfit.Dense(n, activation="relu") for n in layers[:-1]]
    net.append(gradfit.Dense(layers[-1], activation="softmax"))
    model = gradfit.Sequential(net, dtype=dtype)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def train_epochs(model, source, batch_size, epochs=1, shuffle=True, steps_per_epoch=None):
    """``model.fit(source)``; returns (seconds, samples trained)."""
    start = time.perf_counter()
    model.fit(source, batch_size=batch_size, epochs=epochs, shuffle=shuffle, verbose=0,
              steps_per_epoch=steps_per_epoch)
    seconds = time.perf_counter() - start
    return seconds, int(model.train_state.opt["step"]) * batch_size


def child_env(threads):
    env = {k: v for k, v in os.environ.items() if k not in STRIPPED_VARS}
    env = launch.thread_env(threads, env)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env
