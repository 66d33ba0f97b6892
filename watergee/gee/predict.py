"""`watergee gee predict`: the exported network over a season's composite, as an export task.

The class map is exported on the download lattice (EPSG:4326, `cell / cell_pixels` degree
pixels aligned to the global grid), so a map made in the cloud lines up pixel for pixel with
cells classified locally. Earth Engine pyramids an asset by `mean` unless told otherwise, which
invents classes at coarser levels: the class band is pyramided by `mode`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from watergee.core.config import GeeSettings
from watergee.core.errors import ModelError
from watergee.gee.composite import FEATURE_BANDS, FEATURE_CHANNELS, features
from watergee.gee.export import classified
from watergee.gee.model_export import model_image

Destination = Literal["asset", "drive", "storage"]
MAX_PIXELS = 1e13


def prediction(folder: Path, settings: GeeSettings, region: Any, probabilities: bool) -> Any:
    """The class band (and the probability bands) of the model over the composite."""
    composite = features(settings, region).select(list(FEATURE_BANDS))
    probability, metadata = model_image(folder, composite)
    if list(metadata.channels) != list(FEATURE_CHANNELS):
        raise ModelError(f"{folder}: model channels {', '.join(metadata.channels)}; the Earth "
                         f"Engine composite gives {', '.join(FEATURE_CHANNELS)}")  # fmt: skip
    classes = classified(probability, [c.id for c in metadata.classes])
    return classes.addBands(probability.toFloat()) if probabilities else classes


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
