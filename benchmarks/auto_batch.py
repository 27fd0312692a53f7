"""batch_size="auto" against fixed batch sizes, to a test-accuracy target (issue 18, phase 2).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE GRADFIT_DATA=/work/shared/data \\
        python benchmarks/auto_batch.py --seeds 0,1,2 --threads 2 --out auto-batch-rule.jsonl

Contenders, all gradfit on the "same" recipe's network and optimizer (784-512-512-10 ReLU,
Adam 2e-3, linear decay to 2% over 5 epochs, at most 10 epochs; ``--recipe-json`` overrides
fields): ``b32`` .. ``b1024`` (``--batch-sizes``) at a fixed batch, and ``auto``:
``fit(batch_size="auto")`` given no batch size, from ``--auto-min`` (32) up to ``--auto-max``.
The same learning-rate policy for all (``--lr-scaling``):

* ``rule`` (default): the rate is the recipe's at batch ``--lr-batch`` (256) and follows the
  batch by AdaptiveBatchSize's rule: ``auto`` applies it with the measured B_noise; a fixed
  batch B, where nothing is measured, takes that rule's large-noise limit sqrt(B / 256) for
  Adam (B / 256 for SGD);
* ``none``: the recipe's rate at every batch, and ``auto`` with its factor held at 1.

The two settings are the two limits of the same rule at a fixed batch (eps(B) relative to
eps(256) is flat when B_noise << B and follows sqrt(B / 256) when B_noise >> B): between them
they bracket what the rule would give a fixed batch if its noise scale were known. (``auto``
itself trains at the compiled rate until its first estimate, the small-noise limit: B_noise is
small early in training.)

The decay runs over the same number of epochs' worth of examples in every contender (per step
at a fixed batch, per example for ``auto``, whose steps per epoch vary). Each run is
``benchmarks/time_to_target.py`` in a fresh process (the clock of docs/time-to-target.md);
round k runs seed k for every contender in an order rotated by k; every run is appended to
``--out`` as it ends and the same command resumes. Then the medians, ranges, the ratios to
``auto``, and ``--plot`` (default: ``--out`` with .png): time to target per contender, and the
batch-size trajectory of every ``auto`` run beside its B_noise estimate, against epochs.
``--plot-only`` redraws from ``--out``.
"""
import argparse
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ttt import driver  # noqa: E402


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.split("\n")[1:]))
    ap.add_argument("--batch-sizes", default="32,64,128,256,512,1024")
    ap.add_argument("--lr-scaling", choices=("rule", "none"), default="rule")
    ap.add_argument("--lr-batch", type=int, default=256)
    ap.add_argument("--auto-min", type=int, default=32)
    ap.add_argument("--auto-max", type=int, default=4096)
    ap.add_argument("--recipe-json", default="{}", help="other recipe fields, e.g. '{\"max_epochs\": 8}'")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workload", default="mnist", help="mnist (default); digits is a smoke test")
    ap.add_argument("--target", type=float, default=None)
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    ap.add_argument("--out", default="auto-batch.jsonl")
    ap.add_argument("--plot", default=None)
    ap.add_argument("--plot-only", action="store_true")
    args = ap.parse_args(argv)
    try:
        args.sizes = [int(b) for b in args.batch_sizes.split(",")]
        args.seed_list = [int(s) for s in args.seeds.split(",")]
        args.extra = json.loads(args.recipe_json)
        assert isinstance(args.extra, dict)
    except (ValueError, AssertionError):
        ap.error("--batch-sizes and --seeds are comma-separated integers, --recipe-json a JSON object")
    if min(args.sizes) < 1 or args.threads < 1 or not 1 <= args.auto_min <= args.auto_max:
        ap.error("batch sizes and --threads must be >= 1, and 1 <= --auto-min <= --auto-max")
    args.plot = Path(args.plot or Path(args.out).with_suffix(".png"))
    return args


def contenders(args) -> dict:
    """{name: recipe overrides}: the fixed batches, then auto."""
    common = {**args.extra, "lr_scaling": args.lr_scaling, "lr_batch": args.lr_batch}
    out = {f"b{b}": {**common, "name": f"b{b}", "batch_size": b} for b in args.sizes}
    out["auto"] = {**common, "name": "auto", "batch_size": "auto", "auto_min": args.auto_min,
                   "auto_max": args.auto_max}
    return out


def mine(records, args, names) -> list[dict]:
    return [r for r in records if r["recipe"]["name"] in names and r["seed"] in args.seed_list
            and r["recipe"].get("lr_scaling") == args.lr_scaling
            and r["workload"]["name"] == args.workload and r["threads"] == args.threads
            and (args.target is None or r["target"] == args.target)]


def main(argv=None):
    args = parse(argv)
    cands = contenders(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = driver.load_done(out)
    if not args.plot_only:
        have = {(r["recipe"]["name"], r["seed"]) for r in mine(done, args, cands)}
        names = list(cands)
        for k, seed in enumerate(args.seed_list):
            for name in names[k % len(names):] + names[:k % len(names)]:
                if (name, seed) in have:
                    continue
                res = driver.run_one("gradfit", "same", seed, args,
                                     ["--recipe-json", json.dumps(cands[name])])
                if isinstance(res, str):
                    print(f"seed {seed} {name}: FAILED {res}", flush=True)
                    continue
                driver.append(out, res)
                done.append(res)
                t = f"{res['seconds']:.2f} s" if res["reached"] else "target NOT reached"
                print(f"seed {seed} {name}: {t} in {res['epochs']} epochs", flush=True)
    records = mine(done, args, cands)
    order = [("gradfit", "auto")] + [("gradfit", n) for n in cands if n != "auto"]
    summary = driver.summarize(records, order, args.seed_list)
    summary["ratios"] = {k: v for k, v in summary["ratios"].items() if k.endswith("gradfit:auto")}
    print(f"lr scaling {args.lr_scaling!r} (rate meant for batch {args.lr_batch}), workload "
          f"{args.workload}, {args.threads} threads")
    print(driver.summary_text(summary))
    if records:
        plot(records, args, order)
        print(f"figure: {args.plot}")


def plot(records, args, order) -> None:
    """Left: time to target per contender (one mark per seed, the median as a bar; a run that
    missed the target drawn at the top, hollow). Right: every auto run's global batch (steps)
    and B_noise estimate (line) against epochs of data seen, log scale."""
    from gradfit.plotting import PALETTE, figure

    fig = figure((11, 4.2))
    left, right = fig.subplots(1, 2)
    names = [n for _, n in order]
    top = max([r["seconds"] for r in records if r["reached"]] or [1.0]) * 1.1
    for i, name in enumerate(names):
        rs = [r for r in records if r["recipe"]["name"] == name]
        secs = [r["seconds"] for r in rs if r["reached"]]
        if secs:
            left.bar(i, statistics.median(secs), color=PALETTE[3 if name == "auto" else 1], alpha=0.5)
        left.scatter([i] * len(secs), secs, color="black", s=14, zorder=3)
        missed = sum(not r["reached"] for r in rs)
        if missed:
            left.scatter([i] * missed, [top] * missed, facecolors="none", edgecolors="black", s=30)
    left.set_xticks(range(len(names)), names)
    left.set_ylabel(f"seconds to test accuracy {records[0]['target']}")
    left.set_title(f"time to target (lr scaling {args.lr_scaling!r}; hollow: not reached)")
    left.grid(alpha=0.3, axis="y")
    for j, r in enumerate(sorted((r for r in records if r["recipe"]["name"] == "auto"),
                                 key=lambda r: r["seed"])):
        traj, n = r["auto"]["trajectory"], r["auto"]["n_train"]
        epochs = [e / n for e in traj["examples"]]
        color = PALETTE[j % len(PALETTE)]
        right.step([0.0] + epochs, [r["auto"]["first_batch"]] + traj["batch_size"], where="post",
                   color=color, label=f"batch size, seed {r['seed']}")
        noise = [(e, b) for e, b in zip(epochs, traj["b_noise"]) if b is not None]
        if noise:
            right.plot(*zip(*noise), color=color, ls=":", label=f"B_noise, seed {r['seed']}")
    right.set_yscale("log", base=2)
    right.set_xlabel("epochs of data seen")
    right.set_ylabel("examples")
    right.set_title("auto: global batch and the B_noise estimate")
    right.grid(alpha=0.3)
    if right.lines:
        right.legend(fontsize=7)
    fig.savefig(args.plot)


if __name__ == "__main__":
    main()
