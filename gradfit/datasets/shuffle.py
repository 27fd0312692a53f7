"""Epoch orders for data read from disk: the full permutation and the (chunk, block) shuffle.

The lecture's epoch is one uniformly random permutation of all n rows. Read from a file, it
touches rows all over the file in every batch: fine while the file sits in the page cache,
one disk read per row when it does not. The block shuffle keeps the reads local:

1. cut the rows into chunks of ``chunk_rows`` consecutive rows (a chunk never spans two
   shards; the last chunk of a shard may be shorter);
2. permute all the chunks, from all shards;
3. lay their rows end to end in that order, cut that sequence into blocks of ``block_rows``
   consecutive rows and permute the rows within each block.

It is still a permutation of all n rows, so an epoch still sees every row once and the loop
cuts it into the same disjoint, equal batches. But while the batches of one block train, all
reads fall in that block's ``~block_rows / chunk_rows`` chunks, each a contiguous run of the
file: a window of ``block_rows`` rows (the bounded buffer: size it to fit the page cache),
each page of which is read from disk about once per epoch, in reads of a chunk.

With ``chunk_rows`` = the shard size this is Mosaic ``streaming``'s ``py1b`` (shuffle the
shards, then within fixed-size blocks), whose ImageNet accuracy matched a full shuffle (76.51
vs 76.57) on shards of already mixed samples. Whole shards are a poor unit when the shards are
not mixed: packed from data sorted by label, a block of a few shards holds a few classes and
every batch of it too (measured on MNIST sorted into 60 shards, blocks of 6 shards, one epoch:
66% test accuracy against 93% for the full permutation). Small chunks drawn from all shards
make every block a sample of the whole data; ``benchmarks/block_shuffle_quality.py`` measures
the result against the full permutation on that worst case.

Both orders are drawn from the generator they are given (gradfit's one RNG, at the state of
the epoch's start), so a resumed run draws the same order again on any number of ranks.
"""
from __future__ import annotations

import numpy as np


def block_order(shard_rows, block_rows: int, rng: np.random.Generator,
                chunk_rows: int | None = None) -> np.ndarray:
    """A permutation of ``range(sum(shard_rows))``: chunks of ``chunk_rows`` consecutive rows
    (default: whole shards) in random order, rows permuted within consecutive blocks of
    ``block_rows`` (the last block may be shorter).

    ``shard_rows``: rows of each shard, in file order (shard i holds the rows that follow
    shard i-1's). ``block_rows >= n`` and ``chunk_rows == 1`` are full permutations, drawn in
    two steps."""
    sizes = np.asarray(shard_rows, dtype=np.int64)
    if sizes.ndim != 1 or (sizes < 0).any():
        raise ValueError(f"shard_rows must be a list of row counts >= 0, got {shard_rows!r}")
    for name, v in (("block_rows", block_rows), ("chunk_rows", chunk_rows)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    starts, lengths = chunks(sizes, chunk_rows)
    pick = rng.permutation(len(starts))
    lengths, starts = lengths[pick], starts[pick]
    ends = np.cumsum(lengths)
    order = np.arange(int(sizes.sum()), dtype=np.int64)
    order += np.repeat(starts - (ends - lengths), lengths)    # row j of chunk c -> start_c + j
    for lo in range(0, len(order), int(block_rows)):
        rng.shuffle(order[lo:lo + block_rows])                 # a view: permuted in place
    return order


def chunks(shard_rows, chunk_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(first row, rows) of every chunk: each shard cut into runs of ``chunk_rows`` rows."""
    sizes = np.asarray(shard_rows, dtype=np.int64)
    shard_starts = np.cumsum(sizes) - sizes
    if chunk_rows is None:
        keep = sizes > 0
        return shard_starts[keep], sizes[keep]
    per_shard = -(-sizes // chunk_rows)                           # ceil
    shard = np.repeat(np.arange(len(sizes)), per_shard)
    within = np.arange(int(per_shard.sum())) - np.repeat(np.cumsum(per_shard) - per_shard, per_shard)
    starts = shard_starts[shard] + within * chunk_rows
    lengths = np.minimum(chunk_rows, shard_starts[shard] + sizes[shard] - starts)
    return starts, lengths


def block_runs(order: np.ndarray, block_rows: int) -> int:
    """The most runs of consecutive row ids that any block of ``order`` reads: how many
    separate places of the files a block touches (tests and benchmarks report it)."""
    most = 0
    for lo in range(0, len(order), int(block_rows)):
        rows = np.sort(order[lo:lo + block_rows])
        most = max(most, 1 + int(np.count_nonzero(np.diff(rows) != 1)))
    return most
