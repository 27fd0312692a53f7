"""The driver: every contender (framework:recipe) once per seed, interleaved, each run a fresh
process; then medians, ranges and ratios.

Round k runs seed ``seeds[k]`` for every contender, in an order rotated by k, so that no
contender always runs first (or right after the same neighbour) while the shared machine's load
drifts.  Every finished run is appended to ``--out`` (JSON lines) at once; running the same
command again skips the runs already there (resumable), so an interrupted comparison continues.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "time_to_target.py"
STRIPPED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")   # see benchmarks/data_parallel.py


def parse_contenders(text: str, recipe: str) -> list[tuple[str, str]]:
    out = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        fw, _, rec = item.partition(":")
        out.append((fw, rec or recipe))
    if len(set(out)) != len(out):
        raise SystemExit(f"--contenders lists a contender twice: {text!r}")
    return out


def child_env(framework: str, threads: int) -> dict:
    """The environment of one run: thread variables set, the OpenBLAS overrides removed, the
    Keras backend named, and JAX limited to one thread when one is asked for."""
    env = {k: v for k, v in os.environ.items() if k not in STRIPPED}
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(
        os.pathsep) if p])
    if framework.startswith("keras"):
        env["KERAS_BACKEND"] = "jax" if framework == "keras-jax" else "torch"
    if framework == "keras-jax" and threads == 1:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                            "intra_op_parallelism_threads=1").strip()
    return env


def load_done(path: Path) -> list[dict]:
    if not path.exists():
        return []
    done = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            done.append(json.loads(line))
        except json.JSONDecodeError:
            print(f"{path}:{n}: an unfinished line (an interrupted write) is ignored", file=sys.stderr)
    return done


def append(path: Path, rec: dict) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(rec) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def run_one(framework, recipe, seed, args, extra) -> dict | str:
    cmd = [sys.executable, str(SCRIPT), "--framework", framework, "--recipe", recipe,
           "--seed", str(seed), "--threads", str(args.threads), "--workload", args.workload,
           *extra]
    if args.target is not None:
        cmd += ["--target", str(args.target)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                           env=child_env(framework, args.threads), cwd=ROOT)
    except subprocess.TimeoutExpired:
        return f"timed out after {args.timeout} s"
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode or not lines:
        return f"exit {p.returncode}: {p.stderr.strip()[-800:]}"
    return json.loads(lines[-1])


def drive(args, extra=()) -> list[dict]:
    contenders = parse_contenders(args.contenders, args.recipe)
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = load_done(out)
    have = {(r["framework"], r["recipe"]["name"], r["seed"]) for r in done
            if r["workload"]["name"] == args.workload and r["threads"] == args.threads
            and (args.target is None or r["target"] == args.target)}
    for k, seed in enumerate(seeds):
        order = contenders[k % len(contenders):] + contenders[:k % len(contenders)]
        for fw, rec in order:
            if (fw, rec, seed) in have:
                print(f"seed {seed} {fw}:{rec}: already in {out}, skipped", flush=True)
                continue
            res = run_one(fw, rec, seed, args, extra)
            if isinstance(res, str):
                print(f"seed {seed} {fw}:{rec}: FAILED {res}", flush=True)
                continue
            append(out, res)
            done.append(res)
            t = f"{res['seconds']:.2f} s" if res["reached"] else "target NOT reached"
            print(f"seed {seed} {fw}:{rec}: {t} in {res['epochs']} epochs, accuracy "
                  f"{' '.join(f'{a:.4f}' for a in res['accuracy'])}", flush=True)
    mine = [r for r in done if r["workload"]["name"] == args.workload
            and r["threads"] == args.threads and r["seed"] in seeds
            and (r["framework"], r["recipe"]["name"]) in contenders
            and (args.target is None or r["target"] == args.target)]
    print(summary_text(summarize(mine, contenders, seeds)))
    return mine


def summarize(records, contenders, seeds) -> dict:
    """Per contender: runs, reached, median/min/max seconds and epochs; ratios to each other."""
    rows = {}
    for fw, rec in contenders:
        rs = [r for r in records if r["framework"] == fw and r["recipe"]["name"] == rec]
        secs = sorted(r["seconds"] for r in rs if r["reached"])
        rows[f"{fw}:{rec}"] = {
            "runs": len(rs), "reached": len(secs), "seeds": sorted(r["seed"] for r in rs),
            "median_s": statistics.median(secs) if secs else None,
            "min_s": secs[0] if secs else None, "max_s": secs[-1] if secs else None,
            "median_epochs": statistics.median(r["epochs"] for r in rs) if rs else None,
            "median_s_per_epoch": _median_epoch_seconds(rs),
            "accuracy_after_epoch": _accuracy_by_epoch(rs),
            "by_seed": {r["seed"]: r["seconds"] for r in rs},
        }
    ratios = {}
    names = list(rows)
    for i, a in enumerate(names):          # each pair once: time(later) / time(earlier)
        for b in names[i + 1:]:
            ra, rb = rows[a], rows[b]
            if not (ra["median_s"] and rb["median_s"]):
                continue
            paired = [rb["by_seed"][s] / ra["by_seed"][s] for s in seeds
                      if ra["by_seed"].get(s) and rb["by_seed"].get(s)]
            ratios[f"{b} / {a}"] = {
                "of_medians": rb["median_s"] / ra["median_s"],
                "paired_median": statistics.median(paired) if paired else None,
                "paired_range": [min(paired), max(paired)] if paired else None,
                "all_reached": ra["reached"] == ra["runs"] and rb["reached"] == rb["runs"]}
    return {"contenders": rows, "ratios": ratios}


def _median_epoch_seconds(records):
    """The median time of one epoch (training and its evaluation) over every epoch of
    ``records``: the differences of consecutive ``evals[].seconds``."""
    spans = []
    for r in records:
        at = [0.0] + [e["seconds"] for e in r.get("evals", [])]
        spans += [b - a for a, b in zip(at, at[1:])]
    return statistics.median(spans) if spans else None


def _accuracy_by_epoch(records):
    """{epoch: [mean, standard deviation (None for one run), runs]} of the evaluation accuracy
    after each epoch, over the runs that evaluated it (a run stops at the target, so later
    epochs hold fewer runs): whether one framework needs more epochs than another, or luck."""
    by = {}
    for r in records:
        for e, a in enumerate(r.get("accuracy") or [], 1):
            by.setdefault(e, []).append(a)
    return {e: [statistics.mean(v), statistics.stdev(v) if len(v) > 1 else None, len(v)]
            for e, v in sorted(by.items())}


def summary_text(s: dict) -> str:
    lines = [f"{'contender':<22}{'reached':>9}{'median s':>10}{'min':>8}{'max':>8}{'epochs':>8}"
             f"{'s/epoch':>9}"]
    for name, r in s["contenders"].items():
        f = lambda v: f"{v:.2f}" if v is not None else "-"   # noqa: E731
        g = lambda v: f"{v:.3f}" if v is not None else "-"   # noqa: E731
        lines.append(f"{name:<22}{r['reached']:>5}/{r['runs']:<3}{f(r['median_s']):>10}"
                     f"{f(r['min_s']):>8}{f(r['max_s']):>8}{f(r['median_epochs']):>8}"
                     f"{g(r.get('median_s_per_epoch')):>9}")
    lines.append("mean accuracy after each epoch (standard deviation, runs):")
    for name, r in s["contenders"].items():
        cells = [f"{e}: {m:.4f} ({'-' if sd is None else f'{sd:.4f}'}, {n})"
                 for e, (m, sd, n) in (r.get("accuracy_after_epoch") or {}).items()]
        lines.append(f"  {name:<20}{'   '.join(cells) or '-'}")
    if s["ratios"]:
        lines.append("ratios of times (> 1: the contender after the slash is faster by that "
                     "factor): of the medians; median [range] of the same-seed ratios:")
        for name, r in s["ratios"].items():
            p = r["paired_range"]
            pr = f"{r['paired_median']:.2f} [{p[0]:.2f}, {p[1]:.2f}]" if p else "-"
            warn = "" if r["all_reached"] else "   (not every run reached the target)"
            lines.append(f"  {name:<42}{r['of_medians']:>6.2f}   paired {pr}{warn}")
    return "\n".join(lines)
