"""Which way to compute each product of a Dense layer: the measurements behind the choices in
`gradfit/layers/dense.py`.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/dense_products.py --threads 2

For the lecture network's two big layers (1000x2000 and 500x1000) at batch 8..1024 it times
``dx = dz W^T`` directly (``np.matmul(dz, W.T, out=dx)``) against ``(W dz^T)^T`` (the product
into a scratch (n_in, B) buffer, then a transposed copy: what Dense does up to
``TRANSPOSED_DX_MAX``), and for a one-unit layer (2000->1) the outer product ``dz W^T`` by
matmul (inner dimension 1) against a broadcast multiply.  Milliseconds per product, best of
7 repeats; versions, threads and the BLAS kernel are printed first.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402

from gradfit.backend import set_num_threads  # noqa: E402
from gradfit.bench.env import blas_kernel, cpu_model  # noqa: E402
from gradfit.bench.timing import time_call  # noqa: E402
from gradfit.layers.dense import TRANSPOSED_DX_MAX  # noqa: E402


def best_ms(fn) -> float:
    """Milliseconds per call: the best of 7 repeats (`gradfit.bench.timing.time_call`)."""
    return time_call(fn, min_time=0.15, repeats=7) * 1e3


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="8,16,32,64,128,256,512,1024")
    args = ap.parse_args(argv)
    set_num_threads(args.threads)
    print(f"{cpu_model()}; numpy {np.__version__}; BLAS: {blas_kernel()}; "
          f"TRANSPOSED_DX_MAX = {TRANSPOSED_DX_MAX}")
    rng = np.random.default_rng(0)
    batches = [int(b) for b in args.batches.split(",")]

    print("\ndx = dz W^T, ms            direct   transposed+copy   faster")
    for n_in, units in [(1000, 2000), (500, 1000)]:
        w = rng.standard_normal((n_in, units)).astype(np.float32)
        for b in batches:
            dz = rng.standard_normal((b, units)).astype(np.float32)
            dx = np.empty((b, n_in), np.float32)
            dx_t = np.empty((n_in, b), np.float32)
            direct = best_ms(lambda: np.matmul(dz, w.T, out=dx))

            def transposed():
                np.matmul(w, dz.T, out=dx_t)
                dx[...] = dx_t.T
            via_t = best_ms(transposed)
            print(f"  {n_in}x{units} B={b:<5} {direct:10.3f} {via_t:17.3f}   "
                  f"{'transposed' if via_t < direct else 'direct'}")

    print("\none-unit layer 2000->1, dx = dz W^T, ms      matmul   broadcast multiply")
    w = rng.standard_normal((2000, 1)).astype(np.float32)
    for b in batches:
        dz = rng.standard_normal((b, 1)).astype(np.float32)
        dx = np.empty((b, 2000), np.float32)
        mm = best_ms(lambda: np.matmul(dz, w.T, out=dx))
        mul = best_ms(lambda: np.multiply(dz, w.T, out=dx))
        print(f"  B={b:<5} {mm:33.3f} {mul:20.3f}")


if __name__ == "__main__":
    main()
