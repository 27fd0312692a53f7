"""The harness of the before/after benchmarks: one checkout of an older commit beside this tree,
worker processes alternating between the two.

``alternate(before, rounds, script, args)`` checks out the commit ``before`` with ``git worktree
add --detach`` into a temporary folder, runs one worker for the old checkout and one for this
tree in every round, alternating which goes first (a drift of the machine then falls on both),
and removes the worktree whatever happens. A worker (`worker`) is ``python SCRIPT --worker
ARGS`` with its checkout first on ``PYTHONPATH`` and as the working folder, so that it imports
that checkout's gradfit; its last stdout line is a JSON object, its result.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(script, checkout, args) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    cmd = [sys.executable, str(Path(script).resolve()), "--worker", *map(str, args)]
    done = subprocess.run(cmd, env=env, cwd=str(checkout), check=True, capture_output=True,
                          text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def alternate(before, rounds, script, args):
    """({"before": [results], "after": [results]}, load average before, load average after)."""
    with tempfile.TemporaryDirectory(prefix="gradfit-before-") as tmp:
        old = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet",
                        str(old), before], check=True)
        try:
            load_before = os.getloadavg()
            results = {"before": [], "after": []}
            for r in range(rounds):
                order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
                for which in order:
                    results[which].append(worker(script, old if which == "before" else ROOT,
                                                 args))
                print(f"round {r + 1}/{rounds} done ({' then '.join(order)})", flush=True)
            load_after = os.getloadavg()
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                           check=False)
    return results, load_before, load_after


def load_line(load_before, load_after, rounds) -> str:
    """The machine's load averages around the rounds, as every before/after report prints them."""
    return (f"load average before / after: {' '.join(f'{x:.2f}' for x in load_before)} / "
            f"{' '.join(f'{x:.2f}' for x in load_after)}; {rounds} rounds, alternating")


def spread(values, fmt) -> str:
    """min, median and max of ``values``, each formatted by ``fmt`` (e.g. "9.0f")."""
    s = sorted(values)
    return " ".join(format(v, fmt) for v in (s[0], statistics.median(s), s[-1]))
