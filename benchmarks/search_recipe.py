"""Search gradfit's fastest recipe to a target accuracy (issue 18's "best" recipe).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE GRADFIT_DATA=/work/shared/data \\
        python benchmarks/search_recipe.py --candidates 24 --refine 20 --top 4 --threads 2 \\
        --out search-mnist.jsonl

Levers: width and depth, optimizer (Adam, AdamW, SGD with Nesterov momentum), learning rate,
schedule (linear or cosine decay per step over a number of epochs, or constant) and batch size,
``"auto"`` among them: ``fit(batch_size="auto")`` from 32 with the drawn rate meant for batch 256
and scaled by AdaptiveBatchSize's rule (``lr_scaling="rule"``; its decay runs over examples, see
``ttt/recipes.py``).  Procedure:

1. ``--candidates`` recipes drawn at random (``--search-seed``) from the space below, plus the
   "same" recipe as a reference; each trained once (seed 0) by ``time_to_target.py``, each run a
   fresh process, capped at ``--max-epochs``.
2. ``--refine N``: up to N neighbours of the two fastest screened recipes (by their median over
   the seeds where a past run of step 3 has it, else by the screening run; one lever moved one
   notch: the next learning rate, decay length or batch size of the space, the other schedules,
   half or double the width, one layer more or less, Adam <-> AdamW), drawn in a fixed order
   and screened the same way: a local search around what the random draw found.
3. The ``--top`` fastest that reached the target run again on the other ``--seeds``.
4. The winner: the smallest median time among those that reached the target on EVERY seed.
   It is written to ``--best-out`` (default ``benchmarks/ttt/best_recipe.json``, atomically),
   with its runs, so ``time_to_target.py --recipe best`` runs it.

Every run is appended to ``--out`` as it finishes; the same command run again skips the runs
already there (resumable), so a search can be stopped and continued, or rerun on a quiet
machine with a fresh ``--out``.
"""
import argparse
import hashlib
import json
import os
import random
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ttt import driver, recipes  # noqa: E402

SPACE = {
    "hidden": [[256], [512], [1024], [256, 256], [512, 512], [1024, 1024]],
    "optimizer": ["adam", "adamw", "sgd"],
    "learning_rate": {"adam": [1e-3, 2e-3, 4e-3, 8e-3], "adamw": [1e-3, 2e-3, 4e-3, 8e-3],
                      "sgd": [0.05, 0.1, 0.2, 0.4]},
    "schedule": ["linear", "cosine", "constant"],
    "decay_epochs": [2, 3, 4, 5],
    "batch_size": [64, 128, 256, 512, 1024, "auto"],
}


def sample(rng: random.Random) -> dict:
    opt = rng.choice(SPACE["optimizer"])
    c = {"hidden": rng.choice(SPACE["hidden"]), "optimizer": opt,
         "learning_rate": rng.choice(SPACE["learning_rate"][opt]),
         "schedule": rng.choice(SPACE["schedule"]), "decay_epochs": rng.choice(SPACE["decay_epochs"]),
         "batch_size": rng.choice(SPACE["batch_size"])}
    if opt == "sgd":
        c.update(momentum=0.9, nesterov=True)
    if opt == "adamw":
        c["weight_decay"] = 1e-4
    if c["batch_size"] == "auto":
        c.update(lr_scaling="rule", lr_batch=256)
    return c


def neighbours(c: dict) -> list:
    """Recipes one notch from ``c`` on one lever (see the module docstring), in a fixed order."""
    out = []

    def moved(**changes):
        n = {**c, **changes}
        if n["optimizer"] == "adamw":
            n.setdefault("weight_decay", 1e-4)
        else:
            n.pop("weight_decay", None)
        out.append(n)

    def adjacent(values, value):
        i = values.index(value) if value in values else None
        return [] if i is None else [values[j] for j in (i - 1, i + 1) if 0 <= j < len(values)]
    c = {**SAME_LEVERS, **c}
    for lr in adjacent(SPACE["learning_rate"][c["optimizer"]], c["learning_rate"]):
        moved(learning_rate=lr)
    for e in adjacent(SPACE["decay_epochs"], c["decay_epochs"]):
        moved(decay_epochs=e)
    fixed = [b for b in SPACE["batch_size"] if b != "auto"]
    for b in adjacent(fixed, c["batch_size"]):
        moved(batch_size=b)
    for sch in SPACE["schedule"]:
        if sch != c["schedule"]:
            moved(schedule=sch)
    width, depth = c["hidden"][0], len(c["hidden"])
    for h in ([w] * depth for w in (width // 2, width * 2)):
        moved(hidden=h)
    moved(hidden=[width] * (3 - depth) if depth in (1, 2) else [width])
    if c["optimizer"] in ("adam", "adamw"):
        moved(optimizer="adamw" if c["optimizer"] == "adam" else "adam")
    return out


#: the levers of the "same" recipe, so that its neighbours can be drawn too
SAME_LEVERS = {"hidden": [512, 512], "optimizer": "adam", "learning_rate": 2e-3,
               "schedule": "linear", "decay_epochs": 5, "batch_size": 256}


def cid(overrides: dict) -> str:
    return hashlib.sha256(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:10]


def ensure(cands, seeds, args, out, done) -> None:
    for c in cands:
        for seed in seeds:
            k = (cid(c), seed)
            if k in done:
                continue
            res = driver.run_one("gradfit", "same", seed, args, [
                "--recipe-json", json.dumps({**c, "max_epochs": args.max_epochs})])
            if isinstance(res, str):
                print(f"{cid(c)} seed {seed}: FAILED {res}", flush=True)
                continue
            rec = {"id": cid(c), "overrides": c, "seed": seed, "reached": res["reached"],
                   "seconds": res["seconds"], "epochs": res["epochs"], "accuracy": res["accuracy"],
                   "target": res["target"], "threads": res["threads"], "workload": res["workload"]["name"],
                   "load_average": res["environment"]["load_average"]}
            driver.append(out, rec)
            done[k] = rec
            t = f"{rec['seconds']:.2f} s" if rec["reached"] else "not reached"
            print(f"{cid(c)} seed {seed}: {t}, {rec['epochs']} epochs  {json.dumps(c)}", flush=True)


def score(c, seeds, done):
    rs = [done.get((cid(c), s)) for s in seeds]
    if any(r is None or not r["reached"] for r in rs):
        return None
    return statistics.median(r["seconds"] for r in rs)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.split("\n")[1:]))
    ap.add_argument("--candidates", type=int, default=24)
    ap.add_argument("--top", type=int, default=4)
    ap.add_argument("--refine", type=int, default=0,
                    help="neighbours of the two fastest screened recipes to screen too (default 0)")
    ap.add_argument("--seeds", default="0,1,2", help="the first one screens, all rank (default 0,1,2)")
    ap.add_argument("--search-seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workload", default="mnist")
    ap.add_argument("--target", type=float, default=None)
    ap.add_argument("--max-epochs", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--out", default="search-recipe.jsonl")
    ap.add_argument("--best-out", default=str(recipes.BEST_FILE))
    ap.add_argument("--dry-run", action="store_true", help="print the candidates and stop")
    args = ap.parse_args(argv)
    if args.candidates < 0 or args.top < 1:
        ap.error(f"--candidates must be >= 0 and --top >= 1, got {args.candidates}, {args.top}")
    seeds = [int(s) for s in args.seeds.split(",")]
    rng = random.Random(args.search_seed)
    cands = [{}] + [sample(rng) for _ in range(args.candidates)]      # {} = the "same" recipe
    cands = list({cid(c): c for c in cands}.values())                 # drop repeated draws
    if args.dry_run:
        for c in cands:
            print(cid(c), json.dumps(c))
        return
    out = Path(args.out)
    done = {(r["id"], r["seed"]): r for r in driver.load_done(out)
            if r["workload"] == args.workload and r["threads"] == args.threads
            and (args.target is None or r["target"] == args.target)}
    ensure(cands, seeds[:1], args, out, done)                         # 1. screen on one seed

    def screened():
        return sorted((c for c in cands if (done.get((cid(c), seeds[0])) or {}).get("reached")),
                      key=lambda c: done[(cid(c), seeds[0])]["seconds"])
    if args.refine:                                                   # 2. their neighbours
        known = {cid(c) for c in cands}
        def speed(c):      # the median over every seed where known (step 3 of a past run)
            med = score(c, seeds, done)
            return done[(cid(c), seeds[0])]["seconds"] if med is None else med
        near = [n for c in sorted(screened(), key=speed)[:2] for n in neighbours(c)]
        near = [n for n in {cid(n): n for n in near}.values() if cid(n) not in known]
        cands += near[:args.refine]
        ensure(near[:args.refine], seeds[:1], args, out, done)
    screened = screened()
    ensure(screened[:args.top], seeds[1:], args, out, done)           # 3. the top on every seed
    ranked = sorted(((score(c, seeds, done), c) for c in screened[:args.top]
                     if score(c, seeds, done) is not None), key=lambda t: t[0])
    print(f"\n{'id':<12}{'median s':>10}   recipe (overrides of 'same')")
    for med, c in ranked:
        print(f"{cid(c):<12}{med:>10.2f}   {json.dumps(c) if c else 'same'}")
    if not ranked:
        raise SystemExit("no candidate reached the target on every seed; raise --max-epochs or "
                         "--candidates")
    write_best(args, ranked[0][1], ranked[0][0], seeds, done)


def write_best(args, overrides, median, seeds, done) -> None:
    recipe = recipes.get("same", {**overrides, "max_epochs": args.max_epochs, "name": "best"})
    runs = [done[(cid(overrides), s)] for s in seeds]
    command = recipe.train_command(max(r["epochs"] for r in runs), data=args.workload)
    best = {"recipe": recipe.to_dict(), "median_seconds": median, "command": command,
            "runs": runs,
            "search": {"command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
                       "workload": args.workload, "threads": args.threads, "seeds": seeds,
                       "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
    path = Path(args.best_out)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(best, indent=1) + "\n")
    os.replace(tmp, path)
    print(f"best recipe written to {path}: {json.dumps(overrides) if overrides else 'same'}")
    if command:
        print("as one command (the most epochs its runs needed, then the test accuracy):\n  "
              + command)


if __name__ == "__main__":
    main()
