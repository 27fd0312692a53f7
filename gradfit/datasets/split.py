"""Train / validation / test splits that never overlap.

``split_indices`` returns three disjoint index arrays whose union is ``0..n-1``; every
other split is an indexing of those.  Sizes: ``n_test = round(test_fraction * n)``,
``n_val = round(val_fraction * n)``, the rest is train.  A fraction > 0 that rounds to
no example, or leaves no training example, is an error (not a silent empty set).
"""
from __future__ import annotations

import numpy as np


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be an int, None or a numpy Generator, got {seed!r}")


def _count(name: str, fraction, n: int) -> int:
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.floating)) \
            or not 0.0 <= float(fraction) < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {fraction!r}")
    k = int(round(float(fraction) * n))
    if fraction > 0 and k == 0:
        raise ValueError(f"{name}={fraction} of {n} examples selects no example; use a larger "
                         f"fraction (at least {0.5 / n:.3g}) or 0 for no such set")
    return k


def split_indices(n: int, val_fraction: float = 0.0, test_fraction: float = 0.0, seed=0,
                  shuffle: bool = True, stratify=None):
    """Disjoint ``(train, val, test)`` index arrays covering ``range(n)``.

    * ``shuffle=True`` (default): a random permutation by ``seed`` (int, None or Generator)
      is cut into test, validation, train.
    * ``shuffle=False``: no randomness; train first, then validation, then test, in order
      (Keras's ``validation_split`` likewise takes the *last* examples).
    * ``stratify``: labels of shape ``(n,)``; each set then holds each class in proportion
      (within one example per class).  The examples are ordered by the key
      ``(rank within its class + 1/2) / class size`` (ranks random), which interleaves the
      classes evenly, and that order is cut as above.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive number of examples, got {n!r}")
    n_test, n_val = _count("test_fraction", test_fraction, n), _count("val_fraction", val_fraction, n)
    if n_test + n_val >= n:
        raise ValueError(f"val_fraction={val_fraction} + test_fraction={test_fraction} of {n} "
                         f"examples leaves no training example; lower them")
    if stratify is not None and not shuffle:
        raise ValueError("stratify needs shuffle=True (an ordered split cannot be stratified)")
    rng = _rng(seed)
    if not shuffle:
        order = np.arange(n)[::-1]  # cut from the end: test = last n_test, val before it
    elif stratify is None:
        order = rng.permutation(n)
    else:
        labels = np.asarray(stratify)
        if labels.shape != (n,):
            raise ValueError(f"stratify must have shape ({n},), got {labels.shape}")
        _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        perm = rng.permutation(n)
        rank = np.empty(n, dtype=np.float64)
        for c in range(counts.size):
            members = perm[inverse[perm] == c]  # class c in random order
            rank[members] = (np.arange(members.size) + 0.5) / members.size
        order = perm[np.argsort(rank[perm], kind="stable")]
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    if not shuffle:
        test, val, train = test[::-1], val[::-1], train[::-1]
    return train, val, test


def train_val_test_split(x, y, val_fraction: float = 0.0, test_fraction: float = 0.0, seed=0,
                         shuffle: bool = True, stratify: bool = False):
    """Split ``x, y`` into ``(x_train, y_train), (x_val, y_val), (x_test, y_test)``.

    No example appears in two sets and none is dropped (see :func:`split_indices`).
    ``stratify=True`` keeps class proportions, using ``y`` (1-D labels, or one-hot rows).
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same number of examples, got {x.shape[0]} "
                         f"and {y.shape[0]}")
    labels = None
    if stratify:
        labels = y.argmax(axis=1) if y.ndim == 2 else y
    train, val, test = split_indices(x.shape[0], val_fraction, test_fraction, seed, shuffle, labels)
    return (x[train], y[train]), (x[val], y[val]), (x[test], y[test])
