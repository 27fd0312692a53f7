"""`gradfit memory`: the lecture's memory arithmetic for a network (`gradfit.memory`)."""
from __future__ import annotations

from ..memory import format_memory_report
from .types import integer


def add_arguments(parser) -> None:
    """Arguments of ``gradfit memory`` on an argparse parser."""
    parser.epilog = ("The last table gives, for Newton, Gauss-Newton, LM, BFGS, L-BFGS, "
                     "Newton-CG and Adam, the largest array each keeps and its peak in float64 "
                     "(Newton and LM factorise a second n x n copy; Gauss-Newton and LM add one "
                     "row block of the Jacobian). Training with one of them "
                     "(compile(optimizer='lm'), gradfit train --optimizer lm) is refused before "
                     "anything is allocated when that peak exceeds the memory available "
                     "($GRADFIT_MEMORY_AVAILABLE bytes, else MemAvailable).")
    parser.add_argument("layer_sizes", nargs="+", type=integer(1),
                        help="layer widths, input first (e.g. 100 500 1000 2000 1)")
    parser.add_argument("--batch-sizes", nargs="+", type=integer(1), default=[1, 32, 128, 1024],
                        help="batch sizes for the activation memory (default 1 32 128 1024)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--examples", type=integer(1), default=None,
                        help="training examples: the size of the whole Jacobian (examples x "
                             "outputs rows), which Gauss-Newton and LM sum in row blocks instead")
    parser.add_argument("--history", type=integer(1), default=10,
                        help="L-BFGS history m (default 10, SciPy's L-BFGS-B default)")


def run(args) -> int:
    """``gradfit memory``: print the report; returns the exit status."""
    print(format_memory_report(args.layer_sizes, args.batch_sizes, args.dtype,
                               examples=args.examples, history=args.history))
    return 0
