"""Text files users write by hand (tile lists, configs, tables): UTF-8, a byte-order mark
from Windows editors dropped, and bytes that are not UTF-8 named by line."""

from __future__ import annotations

from pathlib import Path

from watergee.core.errors import WatergeeError


def read_text(path: Path, error: type[WatergeeError], what: str) -> str:
    """The file's text; unreadable or not UTF-8 is `error` naming the file (and line)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(f"{path}: line {line} is not UTF-8") from None
