"""The block shuffle's quality: MNIST packed into 60 shards SORTED BY LABEL (the worst case for
any shuffle that reads shard by shard), trained with the (shard, block) shuffle and with the
full permutation, same seeds, several runs; final test accuracy compared.

    GRADFIT_DATA=/path/with/mnist python benchmarks/block_shuffle_quality.py
    python benchmarks/block_shuffle_quality.py --seeds 0 --epochs 1 --hidden 64   # a quick check

Target (issue 16): the block shuffle's mean test accuracy within 0.3 points of the full
permutation's. Defaults: the 784-512-512-10 network, Adam 1e-3, batch 128, 5 epochs, seeds
0-4, blocks of 6000 rows (10% of the data: the page cache holds a tenth of the data) made of
chunks of 64 KiB (20 rows). ``--chunk-rows 1000`` (whole shards, Mosaic's py1b) shows why
chunks: each block then holds at most 6 digits, and so does every batch of it. Each run seeds gradfit with its seed, so the initial weights
are the same for both orders and only the order of the rows differs. The packed copy (188 MB,
float32 pixels / 255) goes to a temporary folder unless ``--packed`` names one to keep.
"""
import argparse
import statistics
import tempfile
from pathlib import Path

import stream_common as common

import numpy as np

import gradfit
from gradfit.datasets import mnist, pack
from gradfit.datasets import open as open_packed
from gradfit.datasets.shuffle import block_runs


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--hidden", default="512,512")
    ap.add_argument("--block-rows", type=int, default=6000)
    ap.add_argument("--chunk-rows", type=int, default=None,
                    help="rows per chunk (default: 64 KiB of rows, 20 for float32 MNIST; the "
                         "shard size gives Mosaic's py1b)")
    ap.add_argument("--shards", type=int, default=60)
    ap.add_argument("--packed", default=None, help="where to keep the packed copy (default: temporary)")
    ap.add_argument("--data-dir", default=None, help="folder holding mnist/ (default $GRADFIT_DATA)")
    return ap.parse_args(argv)


def sorted_pack(folder, shards, data_dir):
    (x, y), (xt, yt) = mnist(data_dir=data_dir)
    order = np.argsort(y, kind="stable")
    pack(x[order], y[order], folder, shard_rows=len(x) // shards, overwrite=True,
         source="MNIST train sorted by label")
    return xt, yt


def run(folder, order, seed, args, xt, yt):
    source = open_packed(folder, order=order, block_rows=args.block_rows,
                         chunk_rows=args.chunk_rows, verify=False)
    hidden = [int(h) for h in args.hidden.split(",")]
    model = common.build_model((784,), layers=[*hidden, 10], seed=seed)
    common.train_epochs(model, source, args.batch_size, epochs=args.epochs)
    return 100 * model.evaluate(xt, yt, batch_size=1000, return_dict=True)["accuracy"]


def main(argv=None):
    args = parse(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.packed or Path(tmp) / "mnist-sorted")
        xt, yt = sorted_pack(folder, args.shards, args.data_dir)
        probe = open_packed(folder, order="block", block_rows=args.block_rows,
                            chunk_rows=args.chunk_rows, verify=False)
        gradfit.set_random_seed(0)
        runs = block_runs(probe.epoch_order(gradfit.utils.rng()), args.block_rows)
        print(f"MNIST train sorted by label in {len(probe.shard_rows)} shards of "
              f"{probe.shard_rows[0]} rows; blocks of {args.block_rows} rows made of chunks of "
              f"{probe.chunk_rows} rows: each block reads at most {runs} runs of the files")
        print(f"784-{args.hidden.replace(',', '-')}-10, Adam, batch {args.batch_size}, "
              f"{args.epochs} epochs")
        acc = {"full": [], "block": []}
        for seed in seeds:
            for order in acc:
                acc[order].append(run(folder, order, seed, args, xt, yt))
            print(f"  seed {seed}: full {acc['full'][-1]:.2f}%  block {acc['block'][-1]:.2f}%",
                  flush=True)
    mean = {k: statistics.fmean(v) for k, v in acc.items()}
    spread = {k: statistics.stdev(v) if len(v) > 1 else 0.0 for k, v in acc.items()}
    for k in acc:
        print(f"  {k:<5} mean test accuracy {mean[k]:.2f}% (sd {spread[k]:.2f}, {len(seeds)} runs)")
    gap = mean["full"] - mean["block"]
    print(f"  full - block: {gap:+.2f} points (target: |gap| <= 0.3) -> "
          f"{'within' if abs(gap) <= 0.3 else 'OUTSIDE'} the target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
