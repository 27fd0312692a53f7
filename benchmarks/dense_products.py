"""Which way to compute each product of a Dense layer: the measurements behind the choices in
`gradfit/layers/dense.py`.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/dense_products.py --threads 2

For the lecture network's two big layers (1000x2000 and 500x1000) at batch 8..1024 it times
``dx = dz W^T`` directly (``np.matmul(dz, W.T, out=dx)``) against ``(W dz^T)^T`` (the product
into a scratch (n_in, B) buffer, then a transposed copy: what Dense does up to
``TRANSPOSED_DX_MAX``), and for a one-unit layer (2000->1) the outer product ``dz W^T`` by
matmul (inner dimension 1) against a broadcast multiply.  Milliseconds per product, best of
7 repeats; versions, threads and the BLAS kernel are printed first.  ``--step`` also times the
lecture network's whole training step with dx computed directly and as Dense does, in turns.
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
from gradfit.train.step import train_step  # noqa: E402


def best_ms(fn) -> float:
    """Milliseconds per call: the best of 7 repeats (`gradfit.bench.timing.time_call`)."""
    return time_call(fn, min_time=0.15, repeats=7) * 1e3


def step_ab(batches, threads):
    """The lecture network's training step with dx computed directly everywhere
    (TRANSPOSED_DX_MAX = 0) and as Dense does it, timed in turns in this process."""
    from gradfit.bench.timing import time_interleaved
    from gradfit.bench.training import NETWORKS, gradfit_model, make_data
    from gradfit.layers import dense
    sizes, kind = NETWORKS["lecture"]
    print(f"\nlecture network step, ms (best of 5 rounds in turns)   direct dx   Dense's choice")
    for b in batches:
        steps = {}
        for label, limit in (("direct", 0), ("dense", dense.TRANSPOSED_DX_MAX)):
            model = gradfit_model(sizes, kind)
            x, y = make_data(sizes, kind, b)
            model.train_on_batch(x, y)
            y = model.check_targets(y, b)

            def step(model=model, x=x, y=y, limit=limit):
                dense.TRANSPOSED_DX_MAX = limit
                train_step(model, model.train_state, x, y, len(x))
            steps[label] = step
        saved = dense.TRANSPOSED_DX_MAX
        try:
            t = time_interleaved(steps, rounds=5, min_time=2.0, settle=0.2)
        finally:
            dense.TRANSPOSED_DX_MAX = saved
        print(f"  B={b:<5} {t['direct'][0] * 1e3:47.3f} {t['dense'][0] * 1e3:16.3f}   "
              f"{t['direct'][0] / t['dense'][0]:.3f}x")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="8,16,32,64,128,256,512,1024")
    ap.add_argument("--step", action="store_true",
                    help="also time the lecture network's step with and without the choice")
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
    if args.step:
        step_ab([b for b in batches if b <= 128] or batches[:1], args.threads)


if __name__ == "__main__":
    main()
