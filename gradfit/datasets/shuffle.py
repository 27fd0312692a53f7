"""Epoch orders for data read from disk: the full permutation and the (shard, block) shuffle.

The lecture's epoch is one uniformly random permutation of all n rows. Read from a file, it
touches rows all over the file in every batch: fine while the file sits in the page cache,
one disk seek per row when it does not. The block shuffle keeps the reads local:

1. permute the order of the shards (files of consecutive rows);
2. lay their rows end to end in that order;
3. cut that sequence into blocks of ``block_rows`` consecutive rows and permute the rows
   within each block.

It is still a permutation of all n rows, so an epoch still sees every row once and the loop
cuts it into the same disjoint, equal batches; but the rows of a block come from about
``block_rows / shard_rows + 1`` shards, so at any time training reads from a window of
``block_rows`` rows (the bounded buffer: size it to fit the page cache), and each shard is
read from disk about once per epoch. This is Mosaic ``streaming``'s ``py1b`` shuffle
(shuffle the shards, then shuffle within fixed-size blocks), whose ImageNet accuracy matched a
full shuffle (76.51 vs 76.57); ``benchmarks/block_shuffle_quality.py`` measures it here
against the full permutation on MNIST packed into shards sorted by label (the worst case).

Both orders are drawn from the generator they are given (gradfit's one RNG, at the state of
the epoch's start), so a resumed run draws the same order again on any number of ranks.
"""
from __future__ import annotations

import numpy as np


def block_order(shard_rows, block_rows: int, rng: np.random.Generator) -> np.ndarray:
    """A permutation of ``range(sum(shard_rows))``: shards in random order, rows permuted
    within consecutive blocks of ``block_rows`` (the last block may be shorter).

    ``shard_rows``: rows of each shard, in file order (shard i holds the rows that follow
    shard i-1's). ``block_rows >= 1``; ``block_rows >= n`` is a full permutation drawn in two
    steps (shards, then rows)."""
    sizes = np.asarray(shard_rows, dtype=np.int64)
    if sizes.ndim != 1 or (sizes < 0).any():
        raise ValueError(f"shard_rows must be a list of row counts >= 0, got {shard_rows!r}")
    if isinstance(block_rows, bool) or not isinstance(block_rows, (int, np.integer)) or block_rows < 1:
        raise ValueError(f"block_rows must be a positive integer, got {block_rows!r}")
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    shards = rng.permutation(len(sizes))
    order = np.concatenate([np.arange(starts[s], starts[s] + sizes[s]) for s in shards]
                           or [np.zeros(0, np.int64)])
    for lo in range(0, len(order), int(block_rows)):
        block = order[lo:lo + block_rows]   # a view: permuted in place
        rng.shuffle(block)
    return order


def window_shards(order: np.ndarray, shard_of_row: np.ndarray, block_rows: int) -> int:
    """The largest number of distinct shards read by any block of an order: the working set
    of the block shuffle, in shards (tests and benchmarks report it)."""
    most = 0
    for lo in range(0, len(order), int(block_rows)):
        most = max(most, len(np.unique(shard_of_row[order[lo:lo + block_rows]])))
    return most
