"""A lock per tile and stage, so that two runs on one output folder never write one tile at
once: the second waits while the first works, then finds the outputs current and skips.

The lock is a file created exclusively (pid, host, start, run) and refreshed while held. It is
stale, and taken over, when its process on this host is gone, or when its holder (on any host:
process ids repeat in containers) stopped refreshing it. A takeover happens under an exclusive
`flock` of a guard file, so two waiters never both take over.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from watergee.core.atomic import pid_alive

#: A holder refreshes its lock this often; one that has not for STALE_AFTER seconds is taken
#: for dead (a node lost with its job, a recycled pid).
HEARTBEAT = 30.0
STALE_AFTER = 600.0


class LockWaitCancelled(Exception):
    """The run was interrupted while this task waited for a lock."""


def _holder(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_stale(path: Path) -> bool:
    holder = _holder(path)
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return False  # released meanwhile: not stale, just gone
    if holder is None:
        return age > 5.0  # half-written by a process that died at once
    if age > STALE_AFTER:
        return True
    if holder.get("host") == socket.gethostname():
        pid = holder.get("pid")
        return not (isinstance(pid, int) and pid_alive(pid))
    return False


def _try_create(path: Path, content: str) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    return True


def _take_over_if_stale(path: Path) -> None:
    """Remove a stale lock, deciding under a guard so that a fresh lock another waiter just
    made is never the one removed."""
    guard = path.with_name(path.name + ".guard")
    with open(guard, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            if is_stale(path):
                with contextlib.suppress(OSError):
                    path.unlink()
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_run_locks(folders: list[Path], run_id: str) -> int:
    """Remove the locks run `run_id` left (its workers were killed); returns the count."""
    removed = 0
    for folder in folders:
        for path in folder.glob("*.lock"):
            holder = _holder(path)
            if holder is not None and holder.get("run") == run_id:
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed += 1
    return removed


@contextlib.contextmanager
def tile_lock(
    path: Path,
    run_id: str,
    on_wait: Callable[[dict | None], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Iterator[None]:
    """Hold the lock file `path` for the block, waiting while a live holder has it; raises
    LockWaitCancelled when `cancelled()` turns true meanwhile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    content = json.dumps({
        "pid": os.getpid(), "host": socket.gethostname(), "run": run_id,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })  # fmt: skip
    told = False
    while not _try_create(path, content):
        _take_over_if_stale(path)
        if cancelled is not None and cancelled():
            raise LockWaitCancelled(str(path))
        if on_wait is not None and not told:
            on_wait(_holder(path))
            told = True
        time.sleep(0.5)
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(HEARTBEAT):
            with contextlib.suppress(OSError):
                os.utime(path)

    beat = threading.Thread(target=heartbeat, name=f"lock {path.name}", daemon=True)
    beat.start()
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(OSError):
            if _holder(path) == json.loads(content):
                path.unlink()
