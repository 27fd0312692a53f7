"""Mini-batches as the lecture defines them.

Every epoch draws a fresh permutation of the n training examples and cuts it into disjoint
batches of equal size B: ``n // B`` batches. When B does not divide n, the ``n % B`` examples
at the end of the permutation sit this epoch out; since the permutation changes every epoch,
they are different examples each time, and every example is used equally often on average.
``drop_remainder=False`` instead adds Keras's final partial batch of ``n % B`` examples.

Data-parallel training cuts every global batch into `size` contiguous slices, one per rank;
the loss of each slice is divided by the *global* batch size, so the sum over ranks of the
slice gradients is the gradient of the global batch (see `gradfit.losses`).
"""
from __future__ import annotations

import numpy as np

from ..checks import ArgumentError, check_int


def check_batch_size(batch_size, n: int, ranks: int = 1) -> int:
    """``batch_size`` as an int that fits ``n`` examples and divides by the ``ranks``."""
    batch_size = check_int("batch_size", batch_size, 1)
    if batch_size > n:
        raise ArgumentError("batch_size", batch_size, f"at most the {n} training examples")
    if batch_size % ranks:
        raise ArgumentError("batch_size", batch_size, f"a multiple of the {ranks} MPI ranks",
                            f"e.g. {{batch_size}} {batch_size - batch_size % ranks or ranks}")
    return batch_size


def next_batch(perm: np.ndarray, seen: int, batch_size: int, drop_remainder: bool = True):
    """The next global batch of an epoch: ``perm[seen:seen + batch_size]``, or None at the end.

    The permutation is consumed in order, so batches are disjoint even if ``batch_size``
    changes between steps. With ``drop_remainder`` (the lecture's equal-size batches) an
    epoch ends when fewer than ``batch_size`` rows are left; otherwise those rows make a final
    partial batch (Keras)."""
    left = len(perm) - seen
    if left >= batch_size or (left > 0 and not drop_remainder):
        return perm[seen:seen + batch_size]
    return None


def epoch_batches(perm: np.ndarray, batch_size: int, drop_remainder: bool = True) -> list[np.ndarray]:
    """Every batch of an epoch at a fixed ``batch_size`` (what `next_batch` yields in turn)."""
    batches, seen = [], 0
    while (batch := next_batch(perm, seen, batch_size, drop_remainder)) is not None:
        batches.append(batch)
        seen += len(batch)
    return batches


def rank_slice(batch: np.ndarray, rank: int, size: int) -> tuple[np.ndarray, int]:
    """(this rank's contiguous share of a global batch, its row offset in the batch).

    Shares are equal when `size` divides the batch (always, except for the partial last batch
    of ``drop_remainder=False``, where they differ by at most one example)."""
    lo, hi = rank_bounds(len(batch), rank, size)
    return batch[lo:hi], lo


def rank_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """``[lo, hi)``: rank ``rank``'s contiguous share of ``n`` rows cut into ``size`` shares
    (equal when ``size`` divides ``n``, else differing by at most one row)."""
    return rank * n // size, (rank + 1) * n // size      # integers: exact, and cheap per step


def steps_per_epoch(n: int, batch_size: int, drop_remainder: bool = True) -> int:
    return n // batch_size + (0 if drop_remainder or n % batch_size == 0 else 1)
