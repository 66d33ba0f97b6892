"""Per-tile records of what a stage did, so that re-runs skip only what is complete.

A record holds the settings hash and a fingerprint (size, mtime) of every input and output.
It is current when the hash matches and every file is still as recorded: an output deleted
or rewritten, an input replaced or a setting changed all make the stage run again. Paths
inside the output folder are stored relative to it, so the folder can be moved or copied
(`cp -a`, `rsync -a`) and still be recognised as complete.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from watergee import __version__
from watergee.core.atomic import atomic_path


def portable(path: Path, root: Path) -> str:
    """`path` relative to `root` when it lies inside it (so the folder can move), else
    absolute."""
    resolved, base = path.resolve(), root.resolve()
    return str(resolved.relative_to(base)) if resolved.is_relative_to(base) else str(resolved)


def fingerprint(path: Path, root: Path) -> dict[str, Any]:
    """Size and mtime of `path`, named relative to `root` when it lies inside it."""
    stat = path.stat()
    return {"path": portable(path, root), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def sidecar(path: Path) -> Path:
    """GDAL's auxiliary file beside a raster (category names, attribute table)."""
    return path.with_name(path.name + ".aux.xml")


def output_fingerprints(paths: list[Path], root: Path) -> list[dict[str, Any]]:
    """Fingerprints of a stage's outputs, each followed by its GDAL auxiliary file when there
    is one: that one only has to exist (GIS tools add statistics to it, which must not make the
    tile stale), but a lost one does."""
    out = []
    for path in paths:
        out.append(fingerprint(path, root))
        if sidecar(path).exists():
            out.append({"path": portable(sidecar(path), root), "exists": True})
    return out


def _same_time(recorded: Any, actual: int) -> bool:
    """Equal modification times; a copy that kept whole seconds only (some `rsync` and file
    systems) still matches."""
    if not isinstance(recorded, int):
        return False
    if recorded == actual:
        return True
    return actual % 1_000_000_000 == 0 and recorded // 1_000_000_000 == actual // 1_000_000_000


def changed_file(entry: dict[str, Any], root: Path) -> str | None:
    """The path of a recorded file that is gone or differs now, else None."""
    try:
        path = root / entry["path"]  # an absolute path stays absolute
        stat = os.stat(path)
    except (OSError, KeyError, TypeError):
        return str(entry.get("path", "?")) if isinstance(entry, dict) else "?"
    if entry.get("exists") is True:  # only its presence is recorded
        return None
    if stat.st_size != entry.get("size") or not _same_time(entry.get("mtime_ns"), stat.st_mtime_ns):
        return str(path)
    return None


def read_record(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def staleness(
    record: dict[str, Any] | None,
    settings_hash: str,
    root: Path,
    origin: dict[str, str] | None = None,
) -> str | None:
    """Why a record does not vouch for complete, current outputs; None when it does.
    `origin` (where the inputs come from) must match what the record says, when given."""
    if not record:
        return "no record"
    if record.get("status") != "done":
        return f"its last run failed: {record.get('error') or 'unknown cause'}"
    if record.get("settings_hash") != settings_hash:
        return "its outputs were made with other settings"
    if not record.get("outputs"):
        return "its record lists no outputs"
    for key, value in (origin or {}).items():
        if record.get(key) != value:
            return f"its {key} was {record.get(key)}, now {value}"
    for entry in record.get("inputs", []) + record.get("outputs", []):
        changed = changed_file(entry, root)
        if changed is not None:
            return f"{changed} changed since it ran"
    return None


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")


def write_record(path: Path, **fields: Any) -> None:
    fields.setdefault("watergee", __version__)
    fields.setdefault("host", socket.gethostname())
    fields.setdefault("finished", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    write_json_atomic(path, fields)
