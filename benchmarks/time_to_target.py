"""Time to a test-accuracy target on MNIST, AlgoPerf style: gradfit against PyTorch and Keras 3.

One run (prints one JSON line):

    GRADFIT_DATA=/work/shared/data python benchmarks/time_to_target.py --framework gradfit --seed 0
    ... --framework torch | keras | keras-jax   --recipe same | algoperf | best   --threads 2
    ... --workload algoperf-mnist --recipe algoperf      (AlgoPerf's MNIST workload and target)

The full comparison (each run a fresh process, contenders interleaved, seeds 0-2; medians and
ratios printed; resumable: finished runs in --out are skipped when the command is run again):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE GRADFIT_DATA=/work/shared/data \\
        python benchmarks/time_to_target.py --driver --contenders gradfit,torch,keras \\
        --seeds 0,1,2 --threads 2 --out ttt-mnist-2threads.jsonl

The clock (``benchmarks/ttt/clock.py``) runs from the first training step (model built and
warmed, data already in the framework's tensors) to the end of the first evaluation at or above
the target; the evaluation of the full evaluation split at every epoch end is inside it.  A run
that has not reached the target after the recipe's ``max_epochs`` reports ``reached: false``.
The JSON line holds the seconds, the epochs, the accuracy of every evaluation with its time,
the recipe, the versions, the thread settings and the BLAS kernel (threadpoolctl).

Keras runs on torch (``--framework keras``) or JAX (``keras-jax``, needs ``pip install jax``).
MNIST comes from ``$GRADFIT_DATA/mnist`` (``gradfit.datasets.mnist``; never downloaded here);
``--workload digits`` is an offline smoke test.
"""
import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
FRAMEWORKS = ("gradfit", "torch", "keras", "keras-jax")


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.split("\n")[1:]))
    ap.add_argument("--framework", choices=FRAMEWORKS, default="gradfit", help="one run of this framework")
    ap.add_argument("--recipe", default="same", help="same (default), algoperf or best")
    ap.add_argument("--recipe-json", default=None,
                    help="JSON object overriding recipe fields, e.g. '{\"batch_size\": 128}'")
    ap.add_argument("--workload", default="mnist", help="mnist (default), algoperf-mnist or digits")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="BLAS / torch / numba threads (default 2)")
    ap.add_argument("--target", type=float, default=None,
                    help="target accuracy (default: the workload's, 0.98 for mnist)")
    ap.add_argument("--max-epochs", type=int, default=None, help="override the recipe's max_epochs")
    ap.add_argument("--torch-impl", choices=("auto", "fused", "foreach"), default="auto",
                    help="torch optimizer kernel (default auto: the faster in the warm-up)")
    d = ap.add_argument_group("driver")
    d.add_argument("--driver", action="store_true", help="run the contenders interleaved over --seeds")
    d.add_argument("--contenders", default="gradfit,torch,keras",
                   help="framework[:recipe] list (default gradfit,torch,keras with --recipe)")
    d.add_argument("--seeds", default="0,1,2")
    d.add_argument("--out", default="time-to-target.jsonl", help="JSON lines, one per run (resumable)")
    d.add_argument("--timeout", type=float, default=900.0, help="seconds per run (default 900)")
    args = ap.parse_args(argv)
    if args.threads < 1:
        ap.error(f"--threads must be >= 1, got {args.threads}")
    if args.target is not None and not 0.0 < args.target <= 1.0:
        ap.error(f"--target is an accuracy in (0, 1], got {args.target}")
    if args.recipe_json is not None:
        try:
            args.overrides = json.loads(args.recipe_json)
            assert isinstance(args.overrides, dict)
        except (json.JSONDecodeError, AssertionError):
            ap.error(f"--recipe-json must be a JSON object, got {args.recipe_json!r}")
    else:
        args.overrides = {}
    if args.max_epochs is not None:
        args.overrides["max_epochs"] = args.max_epochs
    return args


def set_thread_env(framework: str, threads: int) -> None:
    """Before numpy, torch, keras or jax are imported (they read these at import)."""
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(k, str(threads))
    if framework.startswith("keras"):
        os.environ["KERAS_BACKEND"] = "jax" if framework == "keras-jax" else "torch"
    if framework == "keras-jax" and threads == 1 and "XLA_FLAGS" not in os.environ:
        os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def single(args) -> dict:
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t_process = time.perf_counter()
    set_thread_env(args.framework, args.threads)
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent))
    from ttt import clock, recipes, workloads

    recipe = recipes.get(args.recipe, args.overrides)
    if args.recipe == "best" and args.framework != "gradfit":
        raise SystemExit("--recipe best is gradfit's own recipe; compare other frameworks with same")
    if recipe.gradfit_only and args.framework != "gradfit":
        raise SystemExit(f"batch_size={recipe.batch_size!r} / lr_scaling={recipe.lr_scaling!r} "
                         f"are gradfit's (fit(batch_size='auto'), AdaptiveBatchSize's rule); "
                         f"run {args.framework} with a fixed batch_size and lr_scaling 'none'")
    wl = workloads.load(args.workload)
    if recipe.batch_size != "auto" and recipe.batch_size > len(wl.x_train):
        raise SystemExit(f"batch_size {recipe.batch_size} is larger than the {len(wl.x_train)} "
                         f"training examples of {args.workload}; use a smaller batch")
    target = wl.target if args.target is None else args.target
    if args.framework == "gradfit":
        from ttt import run_gradfit as runner
        kwargs = {}
    elif args.framework == "torch":
        from ttt import run_torch as runner
        kwargs = {"impl": args.torch_impl}
    else:
        try:
            from ttt import run_keras as runner
        except ImportError as exc:
            raise SystemExit(f"--framework {args.framework} needs Keras 3 and its backend "
                             f"({os.environ['KERAS_BACKEND']}): {exc}; pip install keras "
                             f"{'jax' if args.framework == 'keras-jax' else 'torch'}") from None
        kwargs = {}
    env = clock.environment(args.threads)
    tc = clock.TargetClock(wl, target, recipe.max_epochs)
    info = runner.run(wl, recipe, args.seed, args.threads, tc, **kwargs)
    env_after = clock.environment(args.threads)   # thread pools as they ran (started lazily)
    return {
        "framework": args.framework, "recipe": recipe.to_dict(), "workload": wl.describe(),
        "seed": args.seed, "threads": args.threads, "target": target, **tc.result(), **info,
        "clock": "first training step .. end of the first evaluation reaching the target; "
                 "every epoch-end evaluation of the full evaluation split inside",
        "started": started, "process_seconds": round(time.perf_counter() - t_process, 2),
        "environment": {**env, "thread_pools": env_after["thread_pools"],
                        "blas": env_after["blas"], "load_average_after": env_after["load_average"]},
    }


def main(argv=None):
    args = parse(argv)
    if args.driver:
        sys.path.insert(0, str(HERE))
        from ttt import driver
        extra = ["--torch-impl", args.torch_impl]
        if args.recipe_json is not None:
            extra += ["--recipe-json", json.dumps(args.overrides)]
        elif args.max_epochs is not None:
            extra += ["--max-epochs", str(args.max_epochs)]
        driver.drive(args, extra)
        return
    print(json.dumps(single(args)), flush=True)


if __name__ == "__main__":
    main()
