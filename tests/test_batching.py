"""Batching as the lecture defines it: disjoint equal-size batches from a fresh permutation each
epoch, Keras's partial last batch on request, and the rank shares of a global batch."""
from __future__ import annotations

import numpy as np
import pytest

from gradfit.train.batching import (check_batch_size, epoch_batches, next_batch, rank_slice,
                                    steps_per_epoch)


@pytest.mark.parametrize("n,B", [(10, 5), (103, 10), (7, 7), (64, 1), (100, 33)])
def test_equal_size_disjoint_batches(n, B):
    perm = np.random.default_rng(n).permutation(n)
    batches = epoch_batches(perm, B)
    assert len(batches) == n // B == steps_per_epoch(n, B)
    assert all(len(b) == B for b in batches)
    used = np.concatenate(batches)
    assert len(np.unique(used)) == len(used), "batches are disjoint"
    assert set(used) <= set(range(n))
    # the left-out examples are the tail of the permutation
    assert set(range(n)) - set(used) == set(perm[(n // B) * B:])


@pytest.mark.parametrize("n,B", [(103, 10), (10, 3), (10, 5)])
def test_drop_remainder_false_adds_a_partial_batch(n, B):
    perm = np.random.default_rng(0).permutation(n)
    batches = epoch_batches(perm, B, drop_remainder=False)
    assert len(batches) == -(-n // B) == steps_per_epoch(n, B, drop_remainder=False)
    assert all(len(b) == B for b in batches[: n // B])
    if n % B:
        assert len(batches[-1]) == n % B
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(n))


def test_left_out_examples_differ_from_epoch_to_epoch():
    n, B, epochs = 103, 10, 200
    rs = np.random.default_rng(0)
    left_out, counts = [], np.zeros(n)
    for _ in range(epochs):
        perm = rs.permutation(n)
        used = np.concatenate(epoch_batches(perm, B))
        counts[used] += 1
        left_out.append(frozenset(set(range(n)) - set(used)))
    assert all(len(s) == 3 for s in left_out)
    assert len(set(left_out)) > epochs * 0.9, "different examples sit out in different epochs"
    assert (counts > 0).all(), "every example is used at some point"
    # each example is used (B * (n // B) / n) of the epochs on average
    assert abs(counts.mean() / epochs - 100 / 103) < 1e-12
    assert counts.min() / epochs > 0.85


def test_batches_are_views_of_the_permutation_order():
    perm = np.array([4, 2, 0, 3, 1, 5])
    batches = epoch_batches(perm, 2)
    assert [b.tolist() for b in batches] == [[4, 2], [0, 3], [1, 5]]


def test_a_batch_size_changed_mid_epoch_keeps_batches_disjoint():
    perm = np.random.default_rng(1).permutation(50)
    seen, sizes, used = 0, [4, 4, 8, 16, 16, 16], []
    for b in sizes:
        batch = next_batch(perm, seen, b)
        if batch is None:
            break
        assert len(batch) == b
        used.append(batch)
        seen += b
    assert [len(b) for b in used] == [4, 4, 8, 16, 16]  # 48 rows; 2 left < 16: the epoch ends
    np.testing.assert_array_equal(np.concatenate(used), perm[:48])
    assert next_batch(perm, 48, 16) is None
    np.testing.assert_array_equal(next_batch(perm, 48, 16, drop_remainder=False), perm[48:])


@pytest.mark.parametrize("B,size", [(12, 3), (12, 4), (10, 3), (7, 2), (5, 5), (3, 1)])
def test_rank_slices_are_disjoint_and_cover_the_batch(B, size):
    batch = np.random.default_rng(B).permutation(100)[:B]
    parts, offsets = [], []
    for r in range(size):
        part, off = rank_slice(batch, r, size)
        np.testing.assert_array_equal(part, batch[off:off + len(part)])
        parts.append(part)
        offsets.append(off)
    np.testing.assert_array_equal(np.concatenate(parts), batch)   # in order, covering it
    lens = [len(p) for p in parts]
    assert max(lens) - min(lens) <= 1
    if B % size == 0:
        assert lens == [B // size] * size
    assert offsets == [sum(lens[:r]) for r in range(size)]


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, None, "8"])
def test_check_batch_size_rejects_non_positive_integers(bad):
    with pytest.raises(ValueError, match=f"batch_size must be an integer >= 1, got {bad!r}"):
        check_batch_size(bad, 10)


def test_check_batch_size_larger_than_data_and_ranks():
    with pytest.raises(ValueError, match="batch_size must be at most the 10 training examples, got 11"):
        check_batch_size(11, 10)
    assert check_batch_size(10, 10) == 10
    with pytest.raises(ValueError, match="must be a multiple of the 4 MPI ranks"):
        check_batch_size(10, 100, ranks=4)
    assert check_batch_size(np.int64(8), 100, ranks=4) == 8
