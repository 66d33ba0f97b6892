"""Cloud-masked seasonal composites, water_gee's eight features and the noisy water label, as
Earth Engine expressions.

Landsat 8/9 Collection 2 Level 2: surface reflectance = DN x 0.0000275 - 0.2; a pixel is a
clear observation when QA_PIXEL bits 0-4 (fill, dilated cloud, cirrus, cloud, cloud shadow) are
all 0, and it is flagged water by bit 7. Sentinel-2 surface reflectance (harmonized, so DN /
10000 whatever the processing baseline): clear unless SCL is 0 (no data), 3 (cloud shadow),
8 or 9 (cloud) or 10 (cirrus); water is SCL 6. The noisy label of a pixel is water when at
least `label_share` of its clear observations in the season are flagged water.

The features, in the order of water_gee's network: blue, green, red, NIR, SWIR1, MNDWI =
(green - SWIR1) / (green + SWIR1), LINE (the largest of four directional line responses of
MNDWI, 2 c - p - q with p and q two pixels either side of c vertically, horizontally and on
both diagonals, as the indices stage computes it) and SRTM elevation / 4000. The line kernels
are symmetric under a half turn, so whether `convolve` flips a kernel does not matter here.
"""

from __future__ import annotations

from typing import Any

from watergee.core.config import GeeSettings

LANDSAT = ("LANDSAT/LC08/C02/T1_L2", "LANDSAT/LC09/C02/T1_L2")
LANDSAT_BANDS = ("SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6")
LANDSAT_SCALE, LANDSAT_OFFSET = 2.75e-05, -0.2
#: QA_PIXEL bits 0-4: fill, dilated cloud, cirrus, cloud, cloud shadow.
LANDSAT_NOT_CLEAR = 0b11111
LANDSAT_WATER_BIT = 7
SENTINEL2 = "COPERNICUS/S2_SR_HARMONIZED"
SENTINEL2_BANDS = ("B2", "B3", "B4", "B8", "B11")
SENTINEL2_SCALE = 1e-4
#: SCL classes that are not a clear view of the ground: no data, shadow, cloud, cirrus.
SCL_NOT_CLEAR = (0, 3, 8, 9, 10)
SCL_WATER = 6
DEM = "USGS/SRTMGL1_003"
DEM_SCALE = 4000.0

REFLECTANCE = ("blue", "green", "red", "nir", "swir1")
#: Band names in Earth Engine, and the channel names of the model and of downloaded files.
FEATURE_BANDS = (*REFLECTANCE, "MNDWI", "LINE", "DEM_4000")
FEATURE_CHANNELS = (*REFLECTANCE, "MNDWI", "LINE", "DEM/4000")
LABEL, VALID = "label", "valid"

#: The four line kernels (5 x 5): 2 at the centre, -1 two pixels away along one direction.
LINE_KERNELS = tuple(
    [[(2 if (r, c) == (2, 2) else -1 if (r, c) in ends else 0) for c in range(5)]
     for r in range(5)]
    for ends in (((0, 2), (4, 2)), ((2, 0), (2, 4)), ((0, 0), (4, 4)), ((0, 4), (4, 0)))
)  # fmt: skip


def _ee():
    import ee

    return ee


def region(bounds: tuple[float, float, float, float]) -> Any:
    """The rectangle (west, south, east, north) in degrees, to restrict the scenes searched."""
    return _ee().Geometry.Rectangle(list(bounds), "EPSG:4326", False)


def landsat_scene(image: Any) -> Any:
    """One Landsat scene: reflectance and the water flag, masked to clear observations."""
    qa = image.select("QA_PIXEL")
    clear = qa.bitwiseAnd(LANDSAT_NOT_CLEAR).eq(0)
    reflectance = image.select(list(LANDSAT_BANDS)).multiply(LANDSAT_SCALE).add(LANDSAT_OFFSET)
    water = qa.rightShift(LANDSAT_WATER_BIT).bitwiseAnd(1).rename("water")
    return reflectance.rename(list(REFLECTANCE)).addBands(water).updateMask(clear)


def sentinel2_scene(image: Any) -> Any:
    """One Sentinel-2 scene: reflectance and the water flag, masked to clear observations."""
    scl = image.select("SCL")
    clear = scl.remap(list(SCL_NOT_CLEAR), [0] * len(SCL_NOT_CLEAR), 1)
    reflectance = image.select(list(SENTINEL2_BANDS)).multiply(SENTINEL2_SCALE)
    water = scl.eq(SCL_WATER).rename("water")
    return reflectance.rename(list(REFLECTANCE)).addBands(water).updateMask(clear)


def scenes(settings: GeeSettings, region: Any) -> Any:
    """The clear observations of the season in the chosen years over `region`."""
    ee = _ee()
    if settings.sensor == "landsat":
        collection = ee.ImageCollection(LANDSAT[0]).merge(ee.ImageCollection(LANDSAT[1]))
        scene = landsat_scene
    else:
        collection, scene = ee.ImageCollection(SENTINEL2), sentinel2_scene
    seasons = [
        ee.Filter.date(*season_dates(y, *settings.months)) for y in sorted(set(settings.years))
    ]
    chosen = collection.filterBounds(region)
    chosen = chosen.filter(seasons[0] if len(seasons) == 1 else ee.Filter.Or(*seasons))
    return chosen.map(scene)


def season_dates(year: int, first: int, last: int) -> tuple[str, str]:
    """[start, end) of the season that begins in `year`: from the first day of month `first`
    to the end of month `last`, in the next year when the season wraps the new year (12, 2:
    December of `year` to February of the next)."""
    end_year = year + 1 if last < first else year
    end_year, end_month = (end_year + 1, 1) if last == 12 else (end_year, last + 1)
    return f"{year:04d}-{first:02d}-01", f"{end_year:04d}-{end_month:02d}-01"


def line_band(mndwi: Any) -> Any:
    ee = _ee()
    responses = [mndwi.convolve(ee.Kernel.fixed(5, 5, k, -1, -1, False)) for k in LINE_KERNELS]
    return ee.Image.cat(responses).reduce(ee.Reducer.max()).rename("LINE")


def features(settings: GeeSettings, region: Any) -> Any:
    """The composite's eight features, named FEATURE_BANDS."""
    ee = _ee()
    observations = scenes(settings, region).select(list(REFLECTANCE))
    reduce = {"median": ee.Reducer.median(), "mean": ee.Reducer.mean()}[settings.reducer]
    reflectance = observations.reduce(reduce).rename(list(REFLECTANCE))
    mndwi = reflectance.normalizedDifference(["green", "swir1"]).rename("MNDWI")
    dem = ee.Image(DEM).select("elevation").divide(DEM_SCALE).rename("DEM_4000")
    return reflectance.addBands(mndwi).addBands(line_band(mndwi)).addBands(dem)


def noisy_label(settings: GeeSettings, region: Any) -> Any:
    """1 where at least `label_share` of the clear observations are flagged water, else 0;
    masked where there is no clear observation."""
    share = scenes(settings, region).select("water").mean()
    return share.gte(settings.label_share).rename(LABEL)


def download_image(settings: GeeSettings, region: Any) -> Any:
    """What a cell's download holds, all float32 so one request carries it: the features
    (0 where invalid), the label (255 where unknown) and `valid` (1 where every feature is)."""
    ee = _ee()
    values = features(settings, region)
    # LINE reads MNDWI two pixels away: valid only where all of those pixels are
    line_context = values.select("MNDWI").mask().focalMin(2, "square", "pixels")
    valid = values.mask().reduce(ee.Reducer.min()).min(line_context).gt(0).rename(VALID)
    label = noisy_label(settings, region).unmask(255)
    return values.unmask(0).addBands(label).addBands(valid).toFloat()
