"""Epoch orders for data read from disk: the full permutation and the (chunk, block) shuffle.

The lecture's epoch is one uniformly random permutation of all n rows. Read from a file, it
touches rows all over the file in every batch: fine while the file sits in the page cache,
one disk read per row when it does not. The block shuffle keeps the reads local:

1. cut the rows into chunks of ``chunk_rows`` consecutive rows (a chunk never spans two
   shards; the last chunk of a shard may be shorter);
2. permute all the chunks, from all shards, stratified: each block draws one chunk from each
   of ``block_rows / chunk_rows`` equal slices of the file (`stratified_permutation`);
3. lay their rows end to end in that order, cut that sequence into blocks of ``block_rows``
   consecutive rows and permute the rows within each block.

It is still a permutation of all n rows, so an epoch still sees every row once and the loop
cuts it into the same disjoint, equal batches. But while the batches of one block train, all
reads fall in that block's ``~block_rows / chunk_rows`` chunks, each a contiguous run of the
file: a window of ``block_rows`` rows (the bounded buffer: size it to fit the page cache),
each page of which is read from disk about once per epoch, in reads of a chunk.

With ``chunk_rows`` = the shard size and a uniform draw of the shards this is Mosaic
``streaming``'s ``py1b`` (shuffle the shards, then within fixed-size blocks), whose ImageNet
accuracy matched a full shuffle (76.51 vs 76.57) on shards of already mixed samples. Whole
shards are a poor unit when the shards are not mixed: packed from data sorted by label, a
block of a few shards holds a few classes and every batch of it too (MNIST sorted into 60
shards, blocks of 6 shards, one epoch: 66% test accuracy against 93% for the full
permutation). Hence small chunks, drawn from all shards, and drawn *stratified*: each block
takes one chunk from each of its ``~block_rows / chunk_rows`` equal slices of the file, so
every block samples the whole file evenly (sorted data give every block the file's class mix
exactly). ``benchmarks/block_shuffle_quality.py`` measures it against the full permutation on
that worst case; docs/streaming.md has the numbers.

Both orders are drawn from the generator they are given (gradfit's one RNG, at the state of
the epoch's start), so a resumed run draws the same order again on any number of ranks.
"""
from __future__ import annotations

import numpy as np

from ..checks import check_int


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
    block_rows = check_int("block_rows", block_rows, 1)
    if chunk_rows is not None:
        chunk_rows = check_int("chunk_rows", chunk_rows, 1)
    starts, lengths = chunks(sizes, chunk_rows)
    per_block = max(1, round(block_rows / max(1.0, float(lengths.mean()))) if len(lengths) else 1)
    pick = stratified_permutation(len(starts), per_block, rng)
    lengths, starts = lengths[pick], starts[pick]
    ends = np.cumsum(lengths)
    order = np.arange(int(sizes.sum()), dtype=np.int64)
    order += np.repeat(starts - (ends - lengths), lengths)    # row j of chunk c -> start_c + j
    for lo in range(0, len(order), int(block_rows)):
        rng.shuffle(order[lo:lo + block_rows])                 # a view: permuted in place
    return order


def stratified_permutation(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """A permutation of ``range(n)`` whose every run of ``k`` consecutive entries holds one
    item of each of ``k`` equal slices of ``range(n)``.

    Each slice is permuted on its own, and run j takes the j-th item of every slice: a block
    of chunks then samples the whole file evenly, as stratified sampling does, so that data
    packed in sorted order still give every block (and so every batch) the file's mix."""
    k = max(1, min(int(k), n))
    bounds = np.linspace(0, n, k + 1).astype(np.int64)
    slices = [bounds[i] + rng.permutation(bounds[i + 1] - bounds[i]) for i in range(k)]
    depth = max((len(s) for s in slices), default=0)
    table = np.full((depth, k), -1, dtype=np.int64)
    for i, s in enumerate(slices):
        table[:len(s), i] = s
    flat = table.reshape(-1)
    return flat[flat >= 0]


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
