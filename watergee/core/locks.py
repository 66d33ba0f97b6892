"""A lock per tile and stage, so that two runs on one output folder never write one tile at
once: the second waits while the first works, then finds the outputs current and skips.

The lock is a file created exclusively (pid, host, start, run). It is stale, and taken over,
when its process on this host is gone, or when its holder elsewhere stopped refreshing it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from watergee.core.atomic import host_tag, pid_alive

#: A holder refreshes its lock this often; one on another host that has not for STALE_AFTER
#: seconds is taken for dead (a node lost with its job).
HEARTBEAT = 30.0
STALE_AFTER = 600.0


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
    if holder.get("host_tag") == host_tag():
        return not pid_alive(int(holder.get("pid", 0)))
    return age > STALE_AFTER


def _try_create(path: Path, content: str) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    return True


@contextlib.contextmanager
def tile_lock(
    path: Path, run_id: str, on_wait: Callable[[dict | None], None] | None = None
) -> Iterator[None]:
    """Hold the lock file `path` for the block, waiting while a live holder has it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    content = json.dumps({
        "pid": os.getpid(), "host": socket.gethostname(), "host_tag": host_tag(),
        "run": run_id, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })  # fmt: skip
    told = False
    while not _try_create(path, content):
        if is_stale(path):
            with contextlib.suppress(OSError):
                path.unlink()
            continue
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
