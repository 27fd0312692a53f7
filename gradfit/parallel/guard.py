"""Per-rank guard: ``mpiexec -n N python -m gradfit.parallel.guard CMD ...``.

A rank killed by a signal (SIGKILL, the OOM killer) cannot say who it was, and MPICH's crash
report names *a* dead pid, not always the first: once one rank dies Hydra kills the others and
may report one of those. The guard is the rank's parent: it runs CMD as its child, and when the
child dies from a signal the guard did not forward, it prints which rank died and how, then
exits with the child's status, which makes Hydra end the job. The child gets SIGKILL if its
guard is killed (Linux PR_SET_PDEATHSIG), so no orphan rank is left waiting in a collective.
"""
from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys

RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID")
#: set in the guarded child's environment
GUARDED = "GRADFIT_GUARDED"


def _die_with_parent():
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: the child may outlive a killed guard
        pass


def main(argv=None) -> int:
    cmd = list(sys.argv[1:] if argv is None else argv)
    if not cmd:
        print("usage: python -m gradfit.parallel.guard CMD [ARGS...]", file=sys.stderr)
        return 2
    rank = next((os.environ[v] for v in RANK_VARS if v in os.environ), "?")
    keep = [int(os.environ["PMI_FD"])] if os.environ.get("PMI_FD", "").isdigit() else []
    env = {**os.environ, GUARDED: "1"}   # the child does not guard itself again (cli.entry)
    child = subprocess.Popen(cmd, pass_fds=keep, preexec_fn=_die_with_parent, env=env)
    forwarded = []

    def forward(signum, _frame):
        forwarded.append(signum)
        child.send_signal(signum)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(s, forward)
    code = child.wait()
    if code < 0 and -code not in forwarded:
        name = signal.Signals(-code).name
        os.write(2, f"gradfit: rank {rank} (pid {child.pid} on {socket.gethostname()}) was killed "
                    f"by signal {-code} ({name})\n".encode())
        return 128 - code
    return code


if __name__ == "__main__":
    sys.exit(main())
