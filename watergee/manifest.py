"""Per-tile records of what a stage did, so that re-runs skip only what is complete.

A record holds the settings hash and a fingerprint (size, mtime) of every input and output.
It is current when the hash matches and every file is still as recorded: an output deleted
or rewritten, an input replaced or a setting changed all make the stage run again.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from watergee import __version__
from watergee.atomic import atomic_path


def fingerprint(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _unchanged(entry: dict[str, Any]) -> bool:
    try:
        stat = os.stat(entry["path"])
    except (OSError, KeyError, TypeError):
        return False
    return stat.st_size == entry.get("size") and stat.st_mtime_ns == entry.get("mtime_ns")


def read_record(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_current(path: Path, settings_hash: str) -> bool:
    record = read_record(path)
    if not record or record.get("status") != "done":
        return False
    if record.get("settings_hash") != settings_hash or not record.get("outputs"):
        return False
    files = record.get("inputs", []) + record.get("outputs", [])
    return all(_unchanged(entry) for entry in files)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")


def write_record(path: Path, **fields: Any) -> None:
    fields.setdefault("watergee", __version__)
    fields.setdefault("host", socket.gethostname())
    fields.setdefault("finished", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    write_json_atomic(path, fields)
