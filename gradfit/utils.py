"""Seeding, the library-wide random generator, and input validation shared by every module;
``PyDataset`` (Keras's ``keras.utils.PyDataset``, defined in `gradfit.datasets.pydataset`)."""
from __future__ import annotations

import random

import numpy as np

from .datasets.base import one_hot
from .datasets.pydataset import PyDataset, Sequence  # noqa: F401  (keras.utils.PyDataset)

_rng = np.random.default_rng()


def set_random_seed(seed: int) -> None:
    """Seed everything gradfit draws from: initial weights, shuffling, dropout.

    gradfit draws every random number from one numpy ``Generator`` (PCG64), on the host, in
    float64, casting afterwards: the same seed gives the same initial weights and the same
    batches on any machine and on either backend. Python's ``random`` and numpy's legacy
    global state are seeded too, for user code that relies on them.
    """
    global _rng
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _rng = np.random.default_rng(int(seed))
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)


def to_categorical(x, num_classes=None):
    """``keras.utils.to_categorical``: one-hot rows (float32) of integer labels ``x``;
    ``num_classes`` defaults to ``max(x) + 1``.  Labels out of range are refused."""
    return one_hot(x, num_classes)


def rng() -> np.random.Generator:
    """The generator behind every random draw of gradfit (see `set_random_seed`)."""
    return _rng


def get_rng_state() -> dict:
    """The generator's full state (JSON-able), for checkpoints."""
    return _rng.bit_generator.state


def set_rng_state(state: dict) -> None:
    _rng.bit_generator.state = state


def check_finite(name: str, a) -> None:
    """Raise ValueError if array `a` holds NaN or inf, naming where the first one is."""
    a = np.asarray(a) if isinstance(a, (list, tuple)) else a
    if a.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(a)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} contains {int(bad.sum())} NaN or inf value(s), the first at index {first} "
            f"(value {a[first].item()!r}); clean or impute those values"
        )
