"""combine: the 10-band 10 m stack in STACK_ORDER, with band ids and reflectance scaling."""

from __future__ import annotations

from pathlib import Path

from osgeo import gdal

from watergee import layout
from watergee.config import Settings
from watergee.errors import MissingBandError
from watergee.raster import (
    BandSpec,
    raster_grid,
    require_same_grid,
    stack_bands,
    virtual_stack,
)
from watergee.sentinel2 import BAND_NAMES, BANDS_10M, STACK_ORDER, band_files, read_scaling
from watergee.stage import StageResult
from watergee.tiles import Tile


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


def stack_specs(tile: Tile, settings: Settings) -> tuple[list[BandSpec], str]:
    """Band descriptions and reflectance scaling of the stack, and where the scaling came from."""
    s2 = settings.sentinel2
    scaling = read_scaling(tile.source, s2.quantification, s2.offset)
    specs = [
        BandSpec(band, *scaling.scale_offset(band), {"BAND_NAME": BAND_NAMES[band]})
        for band in STACK_ORDER
    ]
    return specs, scaling.source


def band_stack(tile: Tile, settings: Settings) -> tuple[gdal.Dataset, list[Path]]:
    """The 10-band stack of a tile read straight from its band files: 20 m bands are resampled
    on the fly like `resample` does, and nothing is written (for `classify.source: bands`)."""
    files = band_files(tile.source, STACK_ORDER)
    paths = [files[band] for band in STACK_ORDER]
    grid = raster_grid(files["B02"])
    specs, _ = stack_specs(tile, settings)
    stack = virtual_stack(paths, grid, settings.resample.method, specs, settings.sentinel2.nodata)
    return stack, paths


def combine(tile: Tile, settings: Settings, out: Path) -> StageResult:
    s2 = settings.sentinel2
    inputs = stack_inputs(tile, out)
    require_same_grid(inputs)
    specs, scaling_source = stack_specs(tile, settings)
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
            "SCALING_SOURCE": scaling_source,
        },
    )
    return StageResult(inputs, [target], {"scaling": scaling_source})
