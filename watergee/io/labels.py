"""Finding a tile's label raster: one raster for all tiles, or one per tile in a folder or list."""

from __future__ import annotations

import re
from pathlib import Path

from watergee.core.errors import TileInputError
from watergee.core.tiles import Tile, read_tile_list

_MGRS = re.compile(r"T\d{2}[A-Z]{3}")
_RASTER_SUFFIXES = {".tif", ".tiff", ".vrt", ".jp2", ".img"}


def label_raster_for(tile: Tile, labels: Path | None) -> Path:
    """The label raster of a tile: the one raster given, or, from a folder or a list file
    (.txt, one raster per line), the one named by the tile id or else its MGRS tile."""
    if labels is None:
        raise TileInputError("no label raster given (--labels FILE, FOLDER or LIST.txt)")
    if labels.is_dir():
        files = sorted(p for p in labels.iterdir() if p.suffix.lower() in _RASTER_SUFFIXES)
    elif labels.suffix.lower() == ".txt":
        files = [tile.source for tile in read_tile_list(labels)]  # paths only
    else:
        return labels
    for key in (tile.id, *(_MGRS.findall(tile.id)[:1])):
        matches = [p for p in files if key in p.name]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(p.name for p in matches)
            raise TileInputError(f"{labels}: several label rasters for tile {tile.id} ({names})")
    raise TileInputError(f"{labels}: no label raster named after tile {tile.id}")
