"""Launch helpers: find ``mpiexec``, build a command line, run a job and explain its failure.

The ``mpich`` wheel (``pip install 'gradfit[mpi]'``) puts ``mpiexec`` (MPICH's Hydra) next to the
Python executable; it runs as root with no extra flags and needs no ssh on one machine.

When a rank dies from a signal (SIGKILL, the OOM killer), Hydra ends every rank within a second
but its report names only a pid, ``PID 10476 RUNNING AT vm ... EXIT CODE: 9``, and not always
the first to die: once one rank dies Hydra kills the others and may report one of those.
`main` therefore runs every rank under `gradfit.parallel.guard`, its parent process, which
prints ``gradfit: rank 1 (pid ...) was killed by signal 9 (SIGKILL)`` when its own child dies.
Without the guard, `explain_failure` maps Hydra's pid through the start-up line of `get_comm()`
(``gradfit: 3 MPI ranks (...): rank 0 pid 10475@vm, ...``), which is right when Hydra reports
the first death.
Slurm (``srun: error: node3: task 1: Killed``) and Open MPI (``process rank 1 with PID ...``)
name the rank themselves.

Command line::

    python -m gradfit.parallel.launch -n 2 [--threads-per-rank 1] [-f hostfile] -- gradfit train ...

runs ``mpiexec -n 2 ... gradfit train ...`` with OMP_NUM_THREADS etc. set, streams its output and,
if the job fails, adds one line naming the failed rank.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

from .comm import THREAD_VARS


def find_mpiexec(required: bool = True):
    """Path of ``mpiexec``: $GRADFIT_MPIEXEC, then the one beside this Python (the mpich wheel),
    then the first on PATH.  Raises FileNotFoundError (or returns None if not `required`)."""
    env = os.environ.get("GRADFIT_MPIEXEC")
    if env:
        if not (os.path.isfile(env) and os.access(env, os.X_OK)):
            raise FileNotFoundError(f"GRADFIT_MPIEXEC={env!r} is not an executable file")
        return env
    for folder in (Path(sys.executable).parent, Path(sys.prefix) / "bin"):
        candidate = folder / "mpiexec"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("mpiexec")
    if found is None and required:
        raise FileNotFoundError("mpiexec not found: pip install 'gradfit[mpi]' (mpi4py + the "
                                "mpich wheel), or set GRADFIT_MPIEXEC=/path/to/mpiexec")
    return found


def thread_env(threads_per_rank, environ=None) -> dict:
    """A copy of the environment with every BLAS/OpenMP thread count set to `threads_per_rank`.

    Rule: ranks per node x threads per rank = cores per node; oversubscribing makes BLAS threads
    of different ranks fight for cores and every step waits for the slowest rank.
    """
    if isinstance(threads_per_rank, bool) or not isinstance(threads_per_rank, int) \
            or threads_per_rank < 1:
        raise ValueError(f"threads_per_rank must be an int >= 1, got {threads_per_rank!r}")
    env = dict(os.environ if environ is None else environ)
    for name in THREAD_VARS:
        env[name] = str(threads_per_rank)
    return env


def mpiexec_command(n, args, mpiexec=None, hostfile=None, extra=()) -> list:
    """``[mpiexec, -n, N, (-f hostfile), *extra, *args]`` as a list for subprocess."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of ranks n must be an int >= 1, got {n!r}")
    if isinstance(args, str) or not args:
        raise ValueError(f"args must be a non-empty list of strings (the program and its "
                         f"arguments), got {args!r}")
    cmd = [mpiexec or find_mpiexec(), "-n", str(n)]
    if hostfile is not None:
        if not os.path.isfile(hostfile):
            raise FileNotFoundError(f"hostfile {hostfile!r} does not exist; one host name per "
                                    "line, optionally 'host:slots'")
        cmd += ["-f", str(hostfile)]
    return cmd + list(extra) + [str(a) for a in args]


def guarded(args) -> list:
    """``args`` run under the per-rank guard (`gradfit.parallel.guard`), which names a rank
    killed by a signal: ``mpiexec_command(n, guarded(["gradfit", "train"]))``."""
    return [sys.executable, "-m", "gradfit.parallel.guard", *[str(a) for a in args]]


def python_command(n, script, *script_args, **kwargs) -> list:
    """mpiexec command running ``python script args`` with this interpreter on `n` ranks."""
    return mpiexec_command(n, [sys.executable, str(script), *script_args], **kwargs)


_RANK_LINE = re.compile(r"rank (\d+) pid (\d+)@(\S+?)(?:,|$)", re.M)
_GUARD_LINE = re.compile(r"gradfit: rank (\d+) \(pid (\d+) on (\S+)\) was killed by signal (\d+) \((\w+)\)")
_HYDRA_BAD = re.compile(r"PID (\d+) RUNNING AT (\S+)\s*\n=\s+EXIT CODE: (\d+)")


def rank_table(output: str) -> dict:
    """{(pid, host): rank} from the start-up line(s) printed by `get_comm()` on rank 0."""
    table = {}
    for line in output.splitlines():
        if "MPI ranks" in line:
            for rank, pid, host in _RANK_LINE.findall(line):
                table[(int(pid), host)] = int(rank)
    return table


def explain_failure(output: str):
    """One line naming the failed rank(s) in an MPICH Hydra crash report, or None.

    >>> out = ("gradfit: 2 MPI ranks (MPICH): rank 0 pid 7@vm, rank 1 pid 8@vm\\n"
    ...        "=   PID 8 RUNNING AT vm\\n=   EXIT CODE: 9\\n")
    >>> explain_failure(out)
    'gradfit launch: rank 1 (pid 8 on vm) was killed by signal 9 (SIGKILL); mpiexec ended the other ranks'
    """
    guard = _GUARD_LINE.search(output)
    if guard:  # the rank's own guard saw it die: the surest report
        rank, pid, host, code, name = guard.groups()
        return (f"gradfit launch: rank {rank} (pid {pid} on {host}) was killed by signal {code} "
                f"({name}); mpiexec ended the other ranks")
    table = rank_table(output)
    lines = []
    for pid, host, code in _HYDRA_BAD.findall(output):
        pid, code = int(pid), int(code)
        rank = table.get((pid, host))
        who = f"rank {rank}" if rank is not None else "an unknown rank"
        how = f"exited with code {code}"
        if 0 < code < 65:  # Hydra reports a signal death as the signal number
            try:
                how = f"was killed by signal {code} ({signal.Signals(code).name})"
            except ValueError:
                pass
        lines.append(f"gradfit launch: {who} (pid {pid} on {host}) {how}; "
                     "mpiexec ended the other ranks")
    return "\n".join(lines) or None


def run(cmd, timeout=None, env=None, stream=False):
    """Run an mpiexec command; returns (returncode, combined output, explanation or None).

    With `stream`, output is copied to this process's stdout as it arrives.  On `timeout` the
    whole process group is killed and the return code is 124.
    """
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            text=True, errors="replace", start_new_session=True)
    chunks = []

    def pump():
        for line in proc.stdout:
            chunks.append(line)
            if stream:
                sys.stdout.write(line)
                sys.stdout.flush()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        # SIGINT first: Hydra then kills its ranks (they run in sessions of their own, out of
        # reach of killpg); SIGKILL the group if it does not end.
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        code = 124
    reader.join(timeout=5)
    output = "".join(chunks)
    return code, output, (explain_failure(output) if code != 0 else None)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gradfit.parallel.launch",
        description="Run a command on N MPI ranks with the mpich wheel's mpiexec; name the "
                    "rank that failed.")
    parser.add_argument("-n", type=int, required=True, help="number of ranks")
    parser.add_argument("--threads-per-rank", type=int, default=None,
                        help="sets OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS (default: cores // n)")
    parser.add_argument("-f", "--hostfile", default=None)
    parser.add_argument("--timeout", type=float, default=None, help="seconds; kill the job after")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- program args...")
    a = parser.parse_args(argv)
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command:
        parser.error("no command given: ... -n 2 -- gradfit train ...")
    threads = a.threads_per_rank or max(1, (os.cpu_count() or 1) // max(a.n, 1))
    cmd = mpiexec_command(a.n, guarded(command), hostfile=a.hostfile)
    code, _, why = run(cmd, timeout=a.timeout, env=thread_env(threads), stream=True)
    if why:
        sys.stdout.write(why + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
