"""`gradfit data pack SRC OUT` / `gradfit data info DIR`: the sharded on-disk format.

    gradfit data pack train.npz packed/ --shard-size 64MB
    gradfit data pack train-images-idx3-ubyte.gz mnist-packed --labels train-labels-idx1-ubyte.gz
    gradfit data info packed/ --verify

`pack` is `gradfit.datasets.pack_file`: it shows a progress bar, writes atomically and reads
every shard back to verify its SHA-256 before the directory appears under its name.
"""
from __future__ import annotations

import json
import re
import sys
import time

import numpy as np

from ..callbacks.progbar import format_duration
from ..checks import ArgumentError
from ..datasets import PackedSource, pack_file, read_index

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6,
          "mib": 2**20, "g": 10**9, "gb": 10**9, "gib": 2**30}


def add_arguments(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    pk = sub.add_parser("pack", help="pack .npz/.csv/IDX/.npy data into shards with an index",
                        description="Pack data into fixed-size-row shards (.npy) with index.json "
                                    "(shape, dtype, row counts, SHA-256 per shard).")
    pk.add_argument("src", help="a .npz, .csv, IDX (*-idx3-ubyte[.gz]) or .npy file, or a folder "
                                "holding x.npy and y.npy")
    pk.add_argument("out", help="the packed directory to write (must not exist, see --overwrite)")
    pk.add_argument("--labels", default=None, help="the labels of IDX or .npy features (an IDX or "
                                                   ".npy file)")
    size = pk.add_mutually_exclusive_group()
    size.add_argument("--shard-size", default="64MiB",
                      help="bytes per shard, e.g. 64MB, 256MiB, 1GB (default 64MiB)")
    size.add_argument("--shard-rows", type=int, default=None, help="rows per shard instead")
    pk.add_argument("--x-key", default=None, help=".npz: the features' array (default x or x_train)")
    pk.add_argument("--y-key", default=None, help=".npz: the targets' array (default y or y_train)")
    pk.add_argument("--label-column", default="-1",
                    help=".csv: the target's column, an index or a header name (default -1)")
    pk.add_argument("--num-classes", type=int, default=None,
                    help="labels must be below this (default: largest label + 1)")
    pk.add_argument("--overwrite", action="store_true",
                    help="replace OUT if it is a packed directory (only once the new one is verified)")
    info = sub.add_parser("info", help="print the index of a packed directory",
                          description="Print what a packed directory holds, shard by shard.")
    info.add_argument("dir", help="a directory written by `gradfit data pack`")
    info.add_argument("--verify", action="store_true", help="also check every shard's SHA-256")
    info.add_argument("--all", action="store_true", help="list every shard (default: first and last 3)")
    info.add_argument("--json", action="store_true", help="print index.json as it is")
    # errors spell arguments as the flags of the parser that read them (gradfit.checks)
    pk.set_defaults(_parser=pk)
    info.set_defaults(_parser=info)
    p.set_defaults(action=None, _data_parser=p)


def run(args):
    if args.action == "pack":
        return _pack(args)
    if args.action == "info":
        return _info(args)
    args._data_parser.print_help()
    return 0


def parse_size(text: str) -> int:
    """``"64MB"`` -> 64000000, ``"64MiB"`` -> 67108864, ``"4096"`` -> 4096."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _UNITS or float(m.group(1)) * _UNITS[unit] < 1:
        raise ArgumentError("shard_size", text, "a size like 64MB, 256MiB or 1GB")
    return int(float(m.group(1)) * _UNITS[unit])


def _pack(args):
    column = int(args.label_column) if args.label_column.lstrip("-").isdigit() else args.label_column
    shard_bytes = None if args.shard_rows else parse_size(args.shard_size)
    bar = Progress(sys.stdout)
    index = pack_file(args.src, args.out, labels=args.labels, x_key=args.x_key, y_key=args.y_key,
                      label_column=column, shard_rows=args.shard_rows, shard_bytes=shard_bytes,
                      num_classes=args.num_classes, overwrite=args.overwrite, progress=bar.update)
    bar.finish(f"verified {len(index['shards'])} shards (sizes, headers, SHA-256)")
    print_index(args.out, index, every=False)
    return 0


def _info(args):
    index = read_index(args.dir)
    if args.json:
        print(json.dumps(index, indent=1))
        return 0
    print_index(args.dir, index, every=args.all)
    if args.verify:
        PackedSource(args.dir, verify=True).close()
        print("verified: every shard matches its size, header and SHA-256")
    return 0


def print_index(folder, index: dict, every: bool = False, out=None) -> None:
    """What a packed directory holds, in a few lines (and its shards, some or all)."""
    out = out or sys.stdout
    shards = index["shards"]
    total = sum(s["bytes"] for s in shards)
    x, y = index["x"], index.get("y")
    ytxt = "none" if y is None else f"{_shape(y['shape'])} {_dtype(y['dtype'])}"
    if index.get("num_classes"):
        ytxt += f", {index['num_classes']} classes"
    print(f"{folder}: {index['rows']} rows in {len(shards)} shards ({_bytes(total)})", file=out)
    print(f"  x: {_shape(x['shape'])} {_dtype(x['dtype'])}   y: {ytxt}   "
          f"{index['record_bytes']} bytes per row", file=out)
    print(f"  from {index.get('source', '?')}, written {index.get('created', '?')}", file=out)
    shown = range(len(shards)) if every or len(shards) <= 6 else [0, 1, 2, None,
                                                                  *range(len(shards) - 3, len(shards))]
    print(f"  {'shard':<18}{'rows':>10}{'bytes':>14}  sha256", file=out)
    for i in shown:
        if i is None:
            print(f"  ... {len(shards) - 6} more shards", file=out)
            continue
        s = shards[i]
        print(f"  {s['file']:<18}{s['rows']:>10}{s['bytes']:>14}  {s['sha256'][:16]}", file=out)


class Progress:
    """A one-line progress display for `pack` (redrawn on a terminal, every ~10% otherwise)."""

    def __init__(self, stream, width: int = 30):
        self.stream, self.width = stream, width
        self.start = time.perf_counter()
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last = -1

    def update(self, rows: int, total) -> None:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = f"{rows / elapsed:,.0f} rows/s"
        if total:
            frac = rows / total
            done = int(self.width * frac)
            bar = "=" * done + (">" if done < self.width else "") + "." * (self.width - done - 1)
            eta = format_duration(elapsed * (1 - frac) / max(frac, 1e-9))
            text = f"packing {rows}/{total} rows [{bar}] {rate}, ETA {eta}"
            step = int(frac * 10)
        else:
            text, step = f"packing {rows} rows, {rate}", rows.bit_length()
        if self.tty:
            self.stream.write("\r" + text)
            self.stream.flush()
        elif step != self._last:
            self.stream.write(text + "\n")
        self._last = step

    def finish(self, message: str) -> None:
        took = format_duration(time.perf_counter() - self.start)
        self.stream.write(("\n" if self.tty else "") + f"{message} in {took}\n")


def _shape(shape) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"


def _dtype(text: str) -> str:
    return np.dtype(text).name


def _bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
