"""`gradfit bench`: the command line over `gradfit.bench` (BLAS, training throughput and
optimizer-step benchmarks, measured in one run; see that package for what each section does)."""
from __future__ import annotations

import json

from ..bench import (FRAMEWORKS, NETWORKS, OPTIMIZERS, format_report, run_bench, targets)
from ..checks import ArgumentError
from .types import integer, integer_list


def add_arguments(parser) -> None:
    """Arguments of ``gradfit bench`` on an argparse parser."""
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, 1-2 repetitions (seconds): a smoke test, not a measurement")
    parser.add_argument("--threads", type=integer(1), default=None,
                        help="threads for BLAS, numba and torch (default: all CPUs)")
    parser.add_argument("--json", default="gradfit_bench.json",
                        help="where to write the results (default gradfit_bench.json; '-' for none)")
    parser.add_argument("--frameworks", default=None,
                        help="comma-separated subset of gradfit,torch,keras "
                             "(default: all; --quick: gradfit,torch)")
    parser.add_argument("--sections", default="matmul,optimizer,training",
                        help="comma-separated subset of matmul,optimizer,training")
    parser.add_argument("--networks", default=None,
                        help=f"comma-separated subset of {','.join(NETWORKS)} for the training "
                             "section (default: lecture,adam,small; mnist is the time-to-target "
                             "network 784-512-512-10)")
    parser.add_argument("--batch-sizes", type=integer_list(1), default=None,
                        help="comma-separated batch sizes of the training section "
                             "(default 8,32,128,1024)")
    parser.add_argument("--optimizers", default=None,
                        help="comma-separated subset of the optimizer section's rows "
                             f"({','.join(OPTIMIZERS)}; default: all)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile a gradfit step of the lecture's network per layer")


def run(args) -> int:
    """``gradfit bench``: run, print the tables, write the JSON; returns the exit status."""
    frameworks = (args.frameworks or ("gradfit,torch" if args.quick else ",".join(FRAMEWORKS)))
    frameworks = tuple(f.strip() for f in frameworks.split(",") if f.strip())
    sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    bad = set(sections) - {"matmul", "optimizer", "training"}
    if bad:
        raise ArgumentError("sections", args.sections, "a comma-separated subset of "
                            "matmul,optimizer,training")

    def names(arg):
        return None if not arg else tuple(n.strip() for n in arg.split(",") if n.strip())
    res = run_bench(quick=args.quick, threads=args.threads, frameworks=frameworks,
                    sections=sections, profile=args.profile,
                    log=lambda m: print(m, flush=True), networks=names(args.networks),
                    optimizers=names(args.optimizers), batches=args.batch_sizes)
    res["targets"] = targets(res)
    print(format_report(res))
    if args.json and args.json != "-":
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1, default=str)
        print(f"\nresults written to {args.json}")
    return 0
