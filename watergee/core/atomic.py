"""Files appear complete or not at all: written under a partial name, renamed into place.

A partial name carries the writer's host, process id and run id, so that a process only ever
removes partial files that are its own or whose writer is gone, never those of a run still
writing beside it.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import re
import secrets
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path

from watergee.core.errors import OutputError

PARTIAL_MARK = ".partial-"
#: The id of the run a task belongs to; the runner sets it around each tile.
RUN_ID: contextvars.ContextVar[str] = contextvars.ContextVar("watergee_run_id", default="norun")
_PARTIAL = re.compile(
    re.escape(PARTIAL_MARK) + r"(?P<host>[0-9a-f]+)-(?P<pid>\d+)-(?P<run>[0-9a-z]+)-[0-9a-f]+"
)


def host_tag() -> str:
    """A short, file-name-safe tag of this host: a digest of its full name, so that
    ip-10-0-12-34 and ip-10-0-1-234 never look alike."""
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:10]


def _partial_name(final: Path) -> Path:
    """A sibling name that no reader takes for the product; the suffix is kept because some
    GDAL drivers choose the format variant by it (JP2 boxes versus a raw J2K codestream)."""
    token = f"{host_tag()}-{os.getpid()}-{RUN_ID.get()}-{secrets.token_hex(3)}"
    return final.with_name(f"{final.stem}{PARTIAL_MARK}{token}{final.suffix}")


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_orphan(path: Path, run_id: str | None = None) -> bool:
    """Whether a partial file may be removed: it belongs to `run_id` (when given), or its
    writer was a process on this host that is gone."""
    match = _PARTIAL.search(path.name)
    if match is None:
        return False
    if run_id is not None and match["run"] == run_id:
        return True
    return match["host"] == host_tag() and not pid_alive(int(match["pid"]))


def remove_partials(final: Path) -> None:
    """Remove leftovers of earlier killed writes of `final` (never a live writer's)."""
    for stale in final.parent.glob(f"{final.stem}{PARTIAL_MARK}*"):
        if is_orphan(stale):
            with contextlib.suppress(OSError):
                stale.unlink()


def sweep_partials(folders: Iterable[Path], run_id: str) -> int:
    """Remove the partial files of run `run_id` (and orphans) in `folders`; returns the count."""
    removed = 0
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.glob(f"*{PARTIAL_MARK}*"):
            if is_orphan(path, run_id):
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed += 1
    return removed


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it into place only if the block succeeds.

    Anything else the writer put beside it under the same partial stem (a scratch file, an
    overview being built) goes too, success or not.
    """
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{final.parent}: cannot create folder ({exc.strerror})") from None
    remove_partials(final)
    tmp = _partial_name(final)
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(f"{final}: nothing was written")
        os.replace(tmp, final)
    finally:
        for leftover in final.parent.glob(f"{tmp.stem}*"):
            with contextlib.suppress(OSError):
                leftover.unlink()
