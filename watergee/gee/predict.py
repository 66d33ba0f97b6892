"""`watergee gee predict`: the exported network over a season's composite, as an export task.

The class map is exported on the download lattice (EPSG:4326, `cell / cell_pixels` degree
pixels aligned to the global grid), so a map made in the cloud lines up pixel for pixel with
cells classified locally. Earth Engine pyramids an asset by `mean` unless told otherwise, which
invents classes at coarser levels: the class band is pyramided by `mode`. Water failing
classify's checks on water (too bright in the SWIR, or vegetation) loses its class there as it
does locally.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from watergee.core.config import ClassifySettings, GeeSettings
from watergee.core.errors import ModelError
from watergee.gee.composite import FEATURE_BANDS, FEATURE_CHANNELS, features
from watergee.gee.export import classified
from watergee.gee.model_export import model_image
from watergee.models.artifact import ClassInfo
from watergee.waterchecks import WaterCheck, swir_check, vegetation_check, water_index

Destination = Literal["asset", "drive", "storage"]
MAX_PIXELS = 1e13


def prediction(
    folder: Path, settings: GeeSettings, region: Any, probabilities: bool, checks: ClassifySettings
) -> tuple[Any, dict[str, str]]:
    """The class band (and the probability bands) of the model over the composite, with
    classify's checks on water; and each check's rule, or why it is off."""
    composite = features(settings, region).select(list(FEATURE_BANDS))
    probability, metadata = model_image(folder, composite)
    if list(metadata.channels) != list(FEATURE_CHANNELS):
        raise ModelError(f"{folder}: model channels {', '.join(metadata.channels)}; the Earth "
                         f"Engine composite gives {', '.join(FEATURE_CHANNELS)}")  # fmt: skip
    probability, rules = water_checked(probability, composite, metadata.classes, checks)
    classes = classified(probability, [c.id for c in metadata.classes])
    return (classes.addBands(probability.toFloat()) if probabilities else classes), rules


def composite_checks(classes: list[ClassInfo], opts: ClassifySettings) -> list[WaterCheck]:
    """classify's checks on water, on the composite's bands (reflectance, named by kind)."""
    water = water_index([c.name for c in classes], [c.id for c in classes], opts.water_class)
    if water is None or len(classes) < 2:
        return []
    found = []
    if opts.water_max_swir is not None:
        found.append(swir_check(water, "swir1", opts.water_max_swir))
    if opts.water_max_ndvi is not None:
        found.append(vegetation_check(water, "red", "nir", opts.water_max_ndvi,
                                      opts.vegetation_min_nir))  # fmt: skip
    return found


def water_checked(
    probability: Any, composite: Any, classes: list[ClassInfo], opts: ClassifySettings
) -> tuple[Any, dict[str, str]]:
    """The probabilities with water's set to 0 where a check fails and the others rescaled to
    sum to 1; masked where no other class had any (as locally: no data, not an arbitrary
    class)."""
    checks = composite_checks(classes, opts)
    rules = {c.name: c.rule for c in checks}
    if not checks:
        return probability, rules
    failed = None
    for check in checks:
        if check.name == "swir":
            fails = composite.select("swir1").gt(opts.water_max_swir)
        else:
            red, nir = composite.select("red"), composite.select("nir")
            ndvi = nir.subtract(red).divide(nir.add(red))
            fails = ndvi.gt(opts.water_max_ndvi).multiply(nir.gt(opts.vegetation_min_nir))
        failed = fails if failed is None else failed.max(fails)
    names = [f"probability_{c.id}" for c in classes]
    water = names[checks[0].water]
    kept = probability.select([water]).multiply(failed.eq(0))
    adjusted = probability.addBands(kept, overwrite=True).select(names)
    total = adjusted.reduce(_sum())
    return adjusted.divide(total).updateMask(total.gt(0)), rules


def _sum() -> Any:
    import ee

    return ee.Reducer.sum()


def lattice_transform(settings: GeeSettings, west: float, north: float) -> list[float]:
    """The download lattice's pixel grid, anchored on a cell corner."""
    pixel = settings.cell / settings.cell_pixels
    return [pixel, 0.0, west, 0.0, -pixel, north]


def export_task(
    image: Any,
    destination: Destination,
    target: str,
    name: str,
    region: Any,
    transform: list[float],
    mixed_types: bool = False,
) -> Any:
    """An unstarted export task; `target` is the asset id, Drive folder or bucket. A GeoTIFF
    holds one data type, so with `mixed_types` (class codes beside probabilities) a file
    export writes every band as float32."""
    import ee

    common = {"image": image, "description": name, "region": region, "crs": "EPSG:4326",
              "crsTransform": transform, "maxPixels": MAX_PIXELS}  # fmt: skip
    if destination == "asset":
        return ee.batch.Export.image.toAsset(
            assetId=target, pyramidingPolicy={".default": "mean", "class": "mode"}, **common
        )
    files = {"fileNamePrefix": name, "fileFormat": "GeoTIFF",
             "formatOptions": {"cloudOptimized": True}}  # fmt: skip
    if destination == "drive":
        return ee.batch.Export.image.toDrive(folder=target, **files, **common)
    if destination == "storage":
        return ee.batch.Export.image.toCloudStorage(bucket=target, **files, **common)
    raise ValueError(f"export destination {destination!r}: choose asset, drive or storage")
