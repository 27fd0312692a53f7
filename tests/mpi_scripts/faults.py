"""Run under mpiexec -n N: a training-like loop of Allreduce steps where one rank fails.

usage: faults.py MODE VICTIM [TIMEOUT]
  MODE kill    the victim sends itself SIGKILL at step 3 (no Python cleanup can run)
  MODE raise   the victim raises RuntimeError at step 3 (uncaught)
  MODE freeze  the victim sleeps forever at step 3 (the watchdog must end the job)
  MODE silent  as freeze, but the victim runs no watchdog (like a rank frozen holding the GIL):
               the ranks waiting in Allreduce must end the job after timeout + grace
  MODE none    no fault: every rank prints "DONE rank r"
"""
import os
import signal
import sys
import time

import numpy as np

from gradfit.parallel.comm import get_comm
from gradfit.parallel.watchdog import Watchdog

mode, victim = sys.argv[1], int(sys.argv[2])
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else None
comm = get_comm()
grads = np.ones(10_000, dtype=np.float32)
silent = mode == "silent" and comm.rank == victim
with Watchdog(comm, timeout=0 if silent else timeout) as dog:
    for step in range(20):
        if step == 3 and comm.rank == victim:
            if mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif mode == "raise":
                raise RuntimeError(f"simulated failure on rank {comm.rank}")
            elif mode in ("freeze", "silent"):
                while True:
                    time.sleep(3600)
        grads[:] = 1.0
        comm.allreduce_(grads)
        assert grads[0] == comm.size
        time.sleep(0.02)
        dog.kick()
print(f"DONE rank {comm.rank}", flush=True)
