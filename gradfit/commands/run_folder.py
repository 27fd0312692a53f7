"""The run folder of ``gradfit train``: never overwritten by accident, never shared by two runs.

A folder is in one of these states (`inspect`):

* ``"new"``: absent or empty: a run starts there;
* ``"finished"``: it holds ``results.json`` (any ending: finished, early stop, NaN, interrupted
  without a backup): replaced only with ``--overwrite``;
* ``"resumable"``: it holds ``backup/backup.gfm`` (a run stopped by Ctrl-C, SIGTERM or a
  crash, trained with backups): ``--backup`` resumes it, ``--overwrite`` starts afresh;
* ``"other"``: files that are not a finished run (a crashed run without a backup, or foreign
  files): only ``--overwrite`` uses it.

`RunLock` is a lock file (``.gradfit.lock``, created with O_EXCL, holding pid, host and
command): a second run on the same folder is refused while the first is alive; a lock left by
a process that no longer exists (on this host) is taken over, and said so.

Every file of the folder is written atomically (`write_json`, `gradfit.saving`).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import time

from ..checks import ArgumentError, literal

LOCK = ".gradfit.lock"
BACKUP = os.path.join("backup", "backup.gfm")


def default_folder(prefix="train") -> str:
    """``runs/<prefix>-<time>``, with a suffix when a run of the same second has it."""
    base = os.path.join("runs", f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}")
    folder, k = base, 1
    while os.path.exists(folder):
        k += 1
        folder = f"{base}-{k}"
    return folder


def inspect(folder: str) -> str:
    """"new", "finished", "resumable" or "other" (see the module docstring)."""
    if not os.path.isdir(folder):
        if os.path.exists(folder):
            return "other"
        return "new"
    names = set(os.listdir(folder)) - {LOCK}
    if not names:
        return "new"
    if os.path.exists(os.path.join(folder, BACKUP)):
        return "resumable"
    if "results.json" in names:
        return "finished"
    return "other"


def check_folder(folder: str, *, overwrite: bool, backup: bool) -> str:
    """What to do with ``folder``: "start" or "resume"; an error when neither is allowed."""
    state = inspect(folder)
    if state == "new":
        return "start"
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ArgumentError("out", folder, "a folder", "it is a file: choose another {out}")
    if overwrite:
        return "start"
    if state == "resumable":
        if backup:
            return "resume"
        raise ArgumentError("out", folder, "a folder without an interrupted run",
                            f"it holds the backup of an interrupted run ({BACKUP}): add "
                            "{backup} to resume it, or {overwrite} to start afresh")
    what = {"finished": "a finished run (results.json)",
            "other": f"files of another kind ({literal(', '.join(sorted(os.listdir(folder))[:4]))})"}[state]
    raise ArgumentError("out", folder, "a new or empty folder",
                        f"it holds {what}: choose another {{out}}, or add {{overwrite}} to "
                        "replace it")


def clear(folder: str) -> None:
    """Empty ``folder`` for a new run (``--overwrite``), keeping the lock file."""
    for name in os.listdir(folder):
        if name == LOCK:
            continue
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


class RunLock:
    """``acquire()`` / ``release()`` (or ``with``) ``folder/.gradfit.lock`` (see the module)."""

    def __init__(self, folder: str, command: str):
        self.path = os.path.join(folder, LOCK)
        self.command = command
        self.note = None   # set when a stale lock was taken over

    def acquire(self):
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        mine = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": self.command})
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            with os.fdopen(fd, "w") as f:
                f.write(mine + "\n")
            return self
        raise ArgumentError("out", os.path.dirname(self.path), "a folder no other run is using",
                            "its lock file could not be taken; choose another {out}")

    def _take_over_if_stale(self):
        try:
            with open(self.path) as f:
                other = json.load(f)
        except (OSError, ValueError):
            other = {}
        pid, host = other.get("pid"), other.get("host")
        if host == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
            os.unlink(self.path)
            self.note = f"took over the lock of pid {pid}, which no longer runs"
            return
        who = f"pid {pid} on {host}, started {other.get('started')}" if pid else "unknown"
        raise ArgumentError("out", os.path.dirname(self.path), "a folder no other run is using",
                            f"another gradfit run ({literal(who)}) holds {literal(self.path)}: wait for it to "
                            "end, or choose another {out}")

    def release(self):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # alive, another user's
        return True
    return True
