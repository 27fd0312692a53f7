"""What ``gradfit train --data PACKED_DIR`` holds before training: the targets and the split.

    python benchmarks/stream_split_memory.py /scratch/big-packed   # 2,000,000 rows, stream_make.py

Opens the packed directory as the command does (`gradfit.commands.train_data`), reads every
row's target in its stored dtype, chunk by chunk, decides the task and splits the rows into
train / validation / test (stratified, as a file's), sampling RssAnon every 2 ms. Prints the
peak above the starting point per row: the targets (1 byte a row for uint8 labels), the row ids
kept (8 bytes a row) and, for a moment, the stratified cut's sort arrays.
"""
import argparse

import stream_common as common

from gradfit.commands import train_data


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("packed")
    ap.add_argument("--val-fraction", type=float, default=0.1)
    args = ap.parse_args(argv)
    run = argparse.Namespace(data=args.packed, labels=None, split_seed=0, seed=0,
                             val_fraction=args.val_fraction, task="auto", num_classes=None)
    base = common.rss_anon_mib()
    with common.PeakSampler(0.002) as mem:
        source, targets = train_data.open_on_disk(run)
        task, data = train_data.split_on_disk(run, source, targets)
    rows = len(source)
    print(f"{rows} rows ({' / '.join(map(str, data.rows))} train / validation / test); "
          f"{task.describe()}")
    print(f"RssAnon {base:.1f} MiB before, peak {mem.peak:.1f} MiB: "
          f"{(mem.peak - base) * 2**20 / rows:.0f} bytes per row at the peak")


if __name__ == "__main__":
    main()
