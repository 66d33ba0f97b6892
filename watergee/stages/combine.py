"""combine: the 10-band 10 m stack in STACK_ORDER, with band ids and reflectance scaling."""

from __future__ import annotations

import logging
from pathlib import Path

from watergee.core import layout
from watergee.core.config import Settings
from watergee.core.errors import MissingBandError
from watergee.core.stage import StageResult
from watergee.core.tiles import Tile
from watergee.io.bandstack import stack_bands
from watergee.io.raster import open_raster, require_same_grid
from watergee.sentinel2 import BANDS_10M, STACK_ORDER, band_files
from watergee.stacks import check_scaling, stack_specs

log = logging.getLogger(__name__)


def stack_inputs(tile: Tile, out: Path) -> list[Path]:
    """The file of each stack band: native 10 m bands from the tile, the rest from resample."""
    native = band_files(tile.source, BANDS_10M)
    paths = []
    for band in STACK_ORDER:
        if band in native:
            paths.append(native[band])
            continue
        path = layout.resampled_band(out, tile, band)
        if not path.exists():
            raise MissingBandError(
                f"{path}: {band} at 10 m not found (run `watergee resample` first)"
            )
        paths.append(path)
    return paths


def combine(tile: Tile, settings: Settings, out: Path) -> StageResult:
    s2 = settings.sentinel2
    inputs = stack_inputs(tile, out)
    require_same_grid(inputs)
    specs, scaling = stack_specs(tile, settings)
    target = layout.stack(out, tile)
    stack_bands(
        inputs,
        target,
        specs,
        s2.nodata,
        settings.output,
        metadata={
            "TILE": tile.id,
            "WATERGEE_STAGE": "combine",
            "BAND_ORDER": ",".join(STACK_ORDER),
            "REFLECTANCE": "DN * scale + offset",
            "SCALING_SOURCE": scaling.source,
        },
    )
    check_scaling(open_raster(target), scaling, target)
    log.info("%s: 10-band stack written (scaling %s)", tile.id, scaling.source)
    read = [*inputs, *([scaling.metadata] if scaling.metadata else [])]
    return StageResult(read, [target], {"scaling": scaling.source})
