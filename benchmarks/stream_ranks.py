"""Data-parallel streaming: 2 ranks on a packed source, each reading only its rows.

    python benchmarks/stream_ranks.py /scratch/big-packed                 # 1 x 2 vs 2 x 1
    python benchmarks/stream_ranks.py /tmp/small --steps 100 --ranks 2     # a quick check

The 784-512-512-10 network at global batch 256. Two child runs over the same packed source:
``1 x T`` (one process, T = ranks BLAS threads) and ``N x 1`` (``mpiexec -n N``, one thread
per rank). Every rank asks the source for its slice of each global batch only; each prints the
rows it read (expected: exactly 1/N of the rows trained) and its throughput. Targets: each
rank reads about half of the rows, and ``N x 1`` keeps at least 85% of ``1 x T``'s samples/s
on the same cores.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import stream_common as common

from gradfit.datasets import open as open_packed
from gradfit.parallel import get_comm, launch


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("packed")
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=0, help="steps (default: one whole epoch)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--result-dir", default=None, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def worker(args):
    comm = get_comm()
    source = open_packed(args.packed, verify=False)
    model = common.build_model(source.row_shape)
    seconds, samples = common.train_epochs(model, source, args.batch_size,
                                           steps_per_epoch=args.steps or None)
    result = {"rank": comm.rank, "size": comm.size, "rows_read": source.rows_read,
              "samples": samples, "seconds": seconds, "samples_per_s": samples / seconds}
    # one file per rank: the ranks' stdout lines can interleave in mpiexec's pipe
    (Path(args.result_dir) / f"rank-{comm.rank}.json").write_text(json.dumps(result))


def launch_run(args, ranks, threads):
    with tempfile.TemporaryDirectory() as results:
        me = [sys.executable, __file__, *sys.argv[1:], "--worker", "--result-dir", results]
        cmd = me if ranks == 1 else launch.mpiexec_command(ranks, me)
        out = subprocess.run(cmd, env=common.child_env(threads), capture_output=True, text=True)
        rows = [json.loads(p.read_text()) for p in Path(results).glob("rank-*.json")]
    if out.returncode or len(rows) != ranks:
        print(out.stdout, out.stderr, file=sys.stderr)
        raise SystemExit(f"the {ranks}-rank run failed (exit {out.returncode})")
    return sorted(rows, key=lambda r: r["rank"])


def main(argv=None):
    args = parse(argv)
    if args.worker:
        worker(args)
        return 0
    print(f"load average before: {os.getloadavg()}")
    one = launch_run(args, 1, args.ranks)[0]
    many = launch_run(args, args.ranks, 1)
    print(f"784-512-512-10, global batch {args.batch_size}")
    print(f"  1 x {args.ranks}: {one['samples']} samples, {one['rows_read']} rows read, "
          f"{one['samples_per_s']:.0f} samples/s")
    for r in many:
        print(f"  rank {r['rank']} of {args.ranks} x 1: {r['rows_read']} rows read "
              f"({r['rows_read'] / max(r['samples'], 1):.1%} of the {r['samples']} trained), "
              f"{r['samples_per_s']:.0f} samples/s")
    ratio = min(r["samples_per_s"] for r in many) / one["samples_per_s"]
    print(f"  {args.ranks} x 1 / 1 x {args.ranks}: {ratio:.1%} (target >= 85%)")
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
