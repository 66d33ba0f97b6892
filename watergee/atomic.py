"""Files appear complete or not at all: written under a partial name, renamed into place."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from watergee.errors import OutputError

PARTIAL_MARK = ".partial-"


def _partial_name(final: Path) -> Path:
    """A sibling name that no reader takes for the product; the suffix is kept because some
    GDAL drivers choose the format variant by it (JP2 boxes versus a raw J2K codestream)."""
    token = f"{os.getpid()}-{secrets.token_hex(3)}"
    return final.with_name(f"{final.stem}{PARTIAL_MARK}{token}{final.suffix}")


def remove_partials(final: Path) -> None:
    """Remove leftovers of earlier killed writes of `final`."""
    for stale in final.parent.glob(f"{final.stem}{PARTIAL_MARK}*{final.suffix}"):
        with contextlib.suppress(OSError):
            stale.unlink()


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it into place only if the block succeeds."""
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
        with contextlib.suppress(OSError):
            tmp.unlink()
