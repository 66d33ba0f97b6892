"""Tile lists: one tile input per line (a .SAFE folder, a folder of band files or a raster).

How a tile is named is the caller's (the sensor module's) business: `name_of` maps an input
path to its id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watergee.core.atomic import atomic_path
from watergee.core.errors import TileListError
from watergee.core.text import read_text


@dataclass(frozen=True)
class Tile:
    """One tile: its id (names its outputs) and its input path."""

    id: str
    source: Path
    line: int = 0  # where it came from in the list, for messages


def plain_name(source: Path) -> str:
    """A folder's name or a file's stem."""
    return (
        source.stem if source.suffix.lower() in {".safe", ".tif", ".tiff", ".vrt"} else source.name
    )


def parse_tile_list(
    text: str, base: Path, origin: str, name_of: Callable[[Path], str] = plain_name
) -> list[Tile]:
    tiles: list[Tile] = []
    seen: dict[str, Tile] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        entry = raw.split("#", 1)[0].strip()
        if not entry:
            continue
        last = entry.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
        if last in ("", ".", ".."):
            raise TileListError(
                f"{origin}: line {number}: '{entry}' is not a tile (a folder or file of one tile)"
            )
        path = Path(entry).expanduser()
        source = path if path.is_absolute() else (base / path)
        tile = Tile(name_of(source), Path(str(source)), number)
        if tile.id in ("", ".", "..") or "/" in tile.id or "\\" in tile.id:
            raise TileListError(f"{origin}: line {number}: '{entry}' gives no usable tile id")
        if tile.id in seen:
            first = seen[tile.id]
            raise TileListError(
                f"{origin}: line {number} names tile {tile.id} again (first on line {first.line})"
            )
        seen[tile.id] = tile
        tiles.append(tile)
    if not tiles:
        raise TileListError(f"{origin}: tile list is empty")
    return tiles


def read_tile_list(path: Path, name_of: Callable[[Path], str] = plain_name) -> list[Tile]:
    """Read a tile list; relative entries are relative to the list file's folder.

    A missing tile input is not an error here: it fails that tile alone when the stage runs.
    """
    text = read_text(path, TileListError, "tile list")
    return parse_tile_list(text, path.resolve().parent, str(path), name_of)


def split_tiles(tiles: list[Tile], chunks: int, origin: str) -> list[list[Tile]]:
    """`chunks` contiguous parts of a tile list whose sizes differ by one at most (the tasks
    of a job array)."""
    if chunks < 1 or chunks > len(tiles):
        raise TileListError(f"{origin}: {len(tiles)} tiles cannot make {chunks} chunks")
    size, extra = divmod(len(tiles), chunks)
    parts, start = [], 0
    for k in range(chunks):
        end = start + size + (1 if k < extra else 0)
        parts.append(tiles[start:end])
        start = end
    return parts


def write_tile_list(tiles: list[Tile], path: Path, comment: str) -> Path:
    """A tile list of absolute paths (readable from any folder), written atomically."""
    lines = [f"# {comment}"] + [str(t.source.resolve()) for t in tiles]
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path
