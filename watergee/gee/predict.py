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
from watergee.waterchecks import WaterCheck, configured_checks, water_class_problem

Destination = Literal["asset", "drive", "storage"]
MAX_PIXELS = 1e13


def prediction(
    folder: Path,
    settings: GeeSettings,
    region: Any,
    probabilities: bool,
    classify_settings: ClassifySettings,
) -> tuple[Any, dict[str, str]]:
    """The class band (and the probability bands) of the model over the composite, with
    classify's checks on water; and each check's rule, or why it is off."""
    composite = features(settings, region).select(list(FEATURE_BANDS))
    probability, metadata = model_image(folder, composite)
    if list(metadata.channels) != list(FEATURE_CHANNELS):
        raise ModelError(f"{folder}: model channels {', '.join(metadata.channels)}; the Earth "
                         f"Engine composite gives {', '.join(FEATURE_CHANNELS)}")  # fmt: skip
    ids = [c.id for c in metadata.classes]
    problem = water_class_problem(ids, classify_settings)
    if problem is not None:
        raise ModelError(f"{folder / 'model.json'}: {problem}")
    probability, rules = water_checked(probability, composite, metadata.classes, classify_settings)
    classes = classified(probability, ids)
    return (classes.addBands(probability.toFloat()) if probabilities else classes), rules


def composite_checks(
    classes: list[ClassInfo], opts: ClassifySettings
) -> tuple[list[WaterCheck], dict[str, str]]:
    """classify's checks on water on the composite's bands (reflectance, named by kind:
    classify.swir_band, red_band and nir_band name stack bands and do not apply here); and each
    check's rule, or why it is off."""
    bands = {"swir": "swir1", "red": "red", "nir": "nir"}
    return configured_checks([c.name for c in classes], [c.id for c in classes], opts, bands)


def _fails(check: WaterCheck, composite: Any) -> Any:
    """Where the composite fails `check`, as a 0/1 image: its numpy rule as an expression."""
    if check.name == "swir":
        (swir,), (limit,) = check.bands, check.limits
        return composite.select(swir).gt(limit)
    if check.name == "vegetation":
        (red, nir), (max_ndvi, min_nir) = check.bands, check.limits
        red, nir = composite.select(red), composite.select(nir)
        ndvi = nir.subtract(red).divide(nir.add(red))  # 0 where the sum is 0: no evidence
        return ndvi.gt(max_ndvi).multiply(nir.gt(min_nir))
    raise ValueError(f"no Earth Engine form of the check on water {check.name!r}")


def water_checked(
    probability: Any, composite: Any, classes: list[ClassInfo], opts: ClassifySettings
) -> tuple[Any, dict[str, str]]:
    """The probabilities as classify leaves them: where the model's class is water and a check
    fails, water's probability set to 0 and the others rescaled to sum to 1, masked where no
    other class had any (no data, not an arbitrary class)."""
    checks, rules = composite_checks(classes, opts)
    if not checks:
        return probability, rules
    failed = None
    for check in checks:
        fails = _fails(check, composite)
        failed = fails if failed is None else failed.max(fails)
    names = [f"probability_{c.id}" for c in classes]
    water = checks[0].water
    called_water = classified(probability, [c.id for c in classes]).eq(classes[water].id)
    # a band the checks read that is masked is no evidence against water: the call stays
    keep = failed.unmask(0).multiply(called_water).eq(0)
    kept = probability.select([names[water]]).multiply(keep)
    adjusted = probability.addBands(kept, overwrite=True).select(names)
    total = adjusted.reduce(_ee().Reducer.sum())
    return adjusted.divide(total).updateMask(total.gt(0)), rules


def _ee() -> Any:
    import ee

    return ee


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
