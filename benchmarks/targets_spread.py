"""The speed targets of docs/speed.md measured several times: how much one `gradfit bench` run can be
trusted on this machine.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/targets_spread.py --runs 5 --threads 2

Runs ``gradfit bench --frameworks gradfit,torch --networks lecture,small --optimizers adam``
``--runs`` times, each in a fresh process (so each run pays its own thread-pool start-up and
sees the machine at a different moment), and prints every run's ratios and their
min / median / max.  On a shared VM the memory bandwidth left to us moves from minute to
minute; a ratio whose whole range clears its goal is met, one whose range straddles it is
not claimed.  The per-run JSON files are kept in ``--out``.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="targets-spread", help="folder for the per-run JSON files")
    ap.add_argument("--quick", action="store_true",
                    help="pass --quick to gradfit bench: a smoke test of this script, no targets")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for i in range(args.runs):
        path = out / f"run{i + 1}-{args.threads}threads.json"
        cmd = [sys.executable, "-m", "gradfit", "bench", "--threads", str(args.threads),
               "--frameworks", "gradfit,torch", "--networks", "lecture,small",
               "--optimizers", "adam", "--json", str(path)] + (["--quick"] if args.quick else [])
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
        res = json.loads(path.read_text())
        runs.append(res)
        print(f"run {i + 1}/{args.runs} done ({res['started']}, load before "
              f"{res['load_average_before'][0]:.2f})", flush=True)
    env = runs[0]["environment"]
    print(f"\n{env['cpu']}; BLAS: {env['blas']}; numba {env['versions']['numba']} "
          f"({env['numba_threading_layer']}); torch {env['versions']['torch']}; "
          f"{args.threads} threads; {args.runs} runs")
    print(f"{'target':<60}{'goal':>6}  {'min':>6}{'median':>8}{'max':>6}   per run")
    for k, t in enumerate(runs[0]["targets"]):
        vals = [r["targets"][k]["value"] for r in runs]
        if any(v is None for v in vals):
            print(f"{t['target']:<60}{t['goal']:>6}  not measured")
            continue
        s, med = sorted(vals), statistics.median(vals)
        lower = t.get("lower_is_better")
        met_all = all((v <= t["goal"]) if lower else (v >= t["goal"]) for v in vals)
        met_none = not any((v <= t["goal"]) if lower else (v >= t["goal"]) for v in vals)
        verdict = "met in every run" if met_all else ("met in no run" if met_none else "straddles")
        print(f"{t['target']:<60}{t['goal']:>6}  {s[0]:>6.2f}{med:>8.2f}{s[-1]:>6.2f}   "
              f"{' '.join(f'{v:.2f}' for v in vals)}   {verdict}")


if __name__ == "__main__":
    main()
