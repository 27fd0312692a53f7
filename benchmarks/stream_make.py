"""Write the out-of-core benchmark set: 2,000,000 MNIST-shaped uint8 rows, packed (1.6 GB).

    python benchmarks/stream_make.py /scratch/big-packed            # 2,000,000 rows, ~1.6 GB
    python benchmarks/stream_make.py /tmp/small --rows 20000         # a quick check

The rows come from a generator, 50,000 at a time, through `gradfit.datasets.pack_chunks`:
never more than one chunk and one shard in memory (the point of the format). Images are
28x28 uint8: a random digit-like stroke pattern per class plus noise, so the labels (uint8,
0..9) are learnable; only the size, shape and dtype matter for the memory and throughput
benchmarks. The same seed writes the same bytes (the shards' SHA-256 are stable). As a float32
array the same data would take 2,000,000 x 784 x 4 = 6.3 GB.
"""
import argparse
import sys
import time

import stream_common  # noqa: F401  (puts the checkout on sys.path)

import numpy as np

from gradfit.commands.data import Progress, print_index
from gradfit.datasets import pack_chunks

CHUNK = 50_000


def rows(n, seed):
    """(x uint8 (k, 28, 28), y uint8 (k,)) chunks, n rows in all."""
    rng = np.random.default_rng(seed)
    templates = rng.random((10, 28, 28)) < 0.18                 # one pattern per class
    for start in range(0, n, CHUNK):
        k = min(CHUNK, n - start)
        y = rng.integers(0, 10, k).astype(np.uint8)
        noise = rng.integers(0, 64, (k, 28, 28), dtype=np.uint8)
        x = np.where(templates[y], np.uint8(255) - noise, noise)
        yield x, y


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="the packed directory to write")
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--shard-size", type=int, default=64 << 20, help="bytes per shard (64 MiB)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    bar = Progress(sys.stdout)
    start = time.perf_counter()
    index = pack_chunks(rows(args.rows, args.seed), args.out, total_rows=args.rows,
                        shard_bytes=args.shard_size, overwrite=args.overwrite, progress=bar.update,
                        source=f"benchmarks/stream_make.py --rows {args.rows} --seed {args.seed}")
    bar.finish(f"wrote and verified {len(index['shards'])} shards")
    print_index(args.out, index)
    total = sum(s["bytes"] for s in index["shards"])
    print(f"{total / 1e9:.2f} GB on disk in {time.perf_counter() - start:.0f} s; as a float32 "
          f"array: {args.rows * 784 * 4 / 1e9:.1f} GB")


if __name__ == "__main__":
    main()
