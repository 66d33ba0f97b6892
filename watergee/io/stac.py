"""STAC records of what watergee makes: an Item beside each product (extent, CRS, classes,
sources, the model), a Catalog over an output folder's Items, and an MLM record beside each
model artifact, so that products and models can be found and read by any STAC tool."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pystac
from osgeo import ogr, osr
from pystac.extensions.classification import Classification, ClassificationExtension
from pystac.extensions.file import FileExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension

from watergee import __version__
from watergee.core.records import sidecar, write_json_atomic
from watergee.io.raster import ClassStyle, grid_of, open_raster, transformer

ITEM_SUFFIX = ".stac.json"
CATALOG = "catalog.json"
MODEL_RECORD = "model.stac.json"  # beside model.json
MLM_SCHEMA = "https://stac-extensions.github.io/mlm/v1.5.2/schema.json"
#: Acquisition dates in Sentinel-2 and Landsat names: 20230715T101031, 20230715.
_DATE = re.compile(r"(?<!\d)(20\d{2}|19\d{2})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2}))?(?!\d)")
_MEDIA = {".tif": pystac.MediaType.GEOTIFF, ".gpkg": "application/geopackage+sqlite3",
          ".fgb": "application/vnd.flatgeobuf"}  # fmt: skip


def item_path(product: Path) -> Path:
    """The Item of a product: <name>.stac.json beside it."""
    return product.with_name(product.name.split(".")[0] + ITEM_SUFFIX)


def _dates(names: Sequence[str]) -> list[dt.datetime]:
    found = []
    for name in names:
        for match in _DATE.finditer(name):
            year, month, day, hh, mm, ss = (int(v) if v else 0 for v in match.groups())
            try:
                found.append(dt.datetime(year, month, day, hh, mm, ss, tzinfo=dt.timezone.utc))
            except ValueError:
                continue
    return found


def _lonlat(srs_wkt: str, bounds: tuple[float, float, float, float]) -> list[list[float]]:
    """The outline of `bounds` in longitude/latitude, edges densified (a UTM square is curved)."""
    west, south, east, north = bounds
    steps = [k / 16 for k in range(17)]
    ring = [(west + (east - west) * t, south) for t in steps]
    ring += [(east, south + (north - south) * t) for t in steps[1:]]
    ring += [(east - (east - west) * t, north) for t in steps[1:]]
    ring += [(west, north - (north - south) * t) for t in steps[1:]]
    if srs_wkt:
        ring = [tuple(p[:2]) for p in transformer(srs_wkt, "EPSG:4326").TransformPoints(ring)]
    return [[round(x, 7), round(y, 7)] for x, y in ring]


def _projection(item: pystac.Item, srs_wkt: str, **fields: Any) -> None:
    """proj:code where the CRS has an EPSG code, else its WKT2."""
    code, wkt2 = None, None
    if srs_wkt:
        srs = osr.SpatialReference()
        srs.ImportFromWkt(srs_wkt)
        with contextlib.suppress(RuntimeError):  # a CRS without an EPSG code keeps its WKT
            srs.AutoIdentifyEPSG()
        authority, number = srs.GetAuthorityName(None), srs.GetAuthorityCode(None)
        code = f"{authority}:{number}" if authority and number else None
        if code is None:
            wkt2 = srs.ExportToWkt(["FORMAT=WKT2_2019"])
    ProjectionExtension.ext(item, add_if_missing=True).apply(code=code, wkt2=wkt2, **fields)


def _classes(
    names: Mapping[int, str], colours: Mapping[int, tuple[int, int, int]], nodata: float | None
) -> list[Classification]:
    codes = sorted({*names, *colours})
    classes = []
    for code in codes:
        title = names.get(code)
        machine = re.sub(r"[^0-9A-Za-z_-]+", "_", title) if title else f"class_{code}"
        colour = colours.get(code)
        classes.append(Classification.create(
            value=code, name=machine, title=title or None, description=title or f"class {code}",
            color_hint="".join(f"{v:02X}" for v in colour) if colour else None,
        ))  # fmt: skip
    if nodata is not None:
        classes.append(
            Classification.create(
                value=int(nodata), name="no_data", description="no data", nodata=True
            )
        )
    return classes


def _checksum(path: Path) -> str:
    """SHA2-256 as a multihash (0x12, 32 bytes), as the file extension wants."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return "1220" + digest.hexdigest()


def _raster_facts(path: Path) -> dict[str, Any]:
    ds = open_raster(path)
    style = ClassStyle.of(ds)
    names = style.names
    colours = {v: c for v, c in style.colours.items() if v in names or not names}
    grid = grid_of(ds)
    cog = (ds.GetMetadata("IMAGE_STRUCTURE") or {}).get("LAYOUT") == "COG"
    return {
        "srs": grid.crs_wkt, "bounds": grid.bounds, "shape": [grid.height, grid.width],
        "transform": list(grid.transform), "names": names, "colours": colours,
        "nodata": style.nodata, "dtype": str(style.dtype), "resolution": grid.resolution[0],
        "metadata": style.metadata, "cog": cog,
    }  # fmt: skip


def _vector_facts(path: Path) -> dict[str, Any]:
    ds = ogr.Open(str(path))
    layer = ds.GetLayer(0)
    srs = layer.GetSpatialRef()
    west, east, south, north = layer.GetExtent()
    names: dict[int, str] = {}
    result = ds.ExecuteSQL(f'SELECT DISTINCT "class" FROM "{layer.GetName()}"')
    codes = [int(f.GetField(0)) for f in result] if result is not None else []
    if result is not None:
        ds.ReleaseResultSet(result)
    for code in codes:  # the name of a class from its first polygon
        layer.SetAttributeFilter(f'"class" = {code}')
        feature = layer.GetNextFeature()
        names[code] = (feature.GetField("name") if feature else "") or ""
    layer.SetAttributeFilter(None)
    return {"srs": srs.ExportToWkt() if srs else "", "bounds": (west, south, east, north),
            "names": names, "features": layer.GetFeatureCount()}  # fmt: skip


def write_item(product: Path, sources: Sequence[Path], stage: str) -> Path:
    """Write the STAC Item of a raster or vector product beside it; returns its path."""
    is_raster = product.suffix.lower() in (".tif", ".tiff")
    facts = _raster_facts(product) if is_raster else _vector_facts(product)
    metadata = facts.get("metadata", {})
    dated = [*(p.name for p in sources), metadata.get("TILES", ""), metadata.get("TILE", "")]
    dates = sorted(set(_dates([*dated, *(str(p.parent.name) for p in sources)])))
    modified = dt.datetime.fromtimestamp(product.stat().st_mtime, dt.timezone.utc)
    ring = _lonlat(facts["srs"], facts["bounds"])
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    properties: dict[str, Any] = {"watergee:stage": stage, "watergee:version": __version__}
    if len(dates) > 1:
        properties |= {"start_datetime": dates[0].isoformat().replace("+00:00", "Z"),
                       "end_datetime": dates[-1].isoformat().replace("+00:00", "Z")}  # fmt: skip
    item = pystac.Item(
        id=product.name.split(".")[0],
        geometry={"type": "Polygon", "coordinates": [ring]},
        bbox=[min(lons), min(lats), max(lons), max(lats)],
        datetime=dates[0] if len(dates) == 1 else (None if dates else modified),
        properties=properties,
    )
    item.common_metadata.created = modified
    if "MODEL" in metadata:
        item.properties["watergee:model"] = metadata["MODEL"]
    media = _MEDIA.get(product.suffix.lower(), "application/octet-stream")
    if is_raster and facts["cog"]:
        media = pystac.MediaType.COG
    asset = pystac.Asset(href=f"./{product.name}", media_type=media, roles=["data"])
    item.add_asset("data", asset)
    if is_raster:
        _projection(item, facts["srs"], shape=facts["shape"], transform=facts["transform"],
                    bbox=list(facts["bounds"]))  # fmt: skip
        raster = RasterExtension.ext(asset, add_if_missing=True)
        raster.bands = [RasterBand.create(
            data_type=DataType(facts["dtype"]), nodata=facts["nodata"],
            spatial_resolution=facts["resolution"],
        )]  # fmt: skip
        classes = _classes(facts["names"], facts["colours"], facts["nodata"])
    else:
        _projection(item, facts["srs"], bbox=list(facts["bounds"]))
        item.properties["watergee:features"] = facts["features"]
        classes = _classes(facts["names"], {}, None)
    if classes:
        ClassificationExtension.ext(asset, add_if_missing=True).classes = classes
    files = FileExtension.ext(asset, add_if_missing=True)
    files.size = product.stat().st_size
    files.checksum = _checksum(product)
    legend, look = sidecar(product), product.with_suffix(".png")
    if legend.exists():  # category names and attribute table: they travel with the data
        item.add_asset("legend", pystac.Asset(href=f"./{legend.name}", roles=["metadata"],
                                              media_type="application/xml",
                                              title="category names, attribute table"))  # fmt: skip
    if look.exists():
        item.add_asset("thumbnail", pystac.Asset(href=f"./{look.name}", roles=["thumbnail"],
                                                 media_type=pystac.MediaType.PNG))  # fmt: skip
    target = item_path(product)
    for source in sources:
        source = Path(source)
        linked = item_path(source) if item_path(source).exists() else source
        item.add_link(pystac.Link("derived_from", _relative(linked, target.parent),
                                  title=source.name))  # fmt: skip
    model = Path(metadata["MODEL"]) / MODEL_RECORD if "MODEL" in metadata else None
    if model is not None and model.exists():
        item.add_link(pystac.Link("derived_from", _relative(model, target.parent),
                                  media_type=pystac.MediaType.JSON, title="model"))  # fmt: skip
    write_json_atomic(target, item.to_dict(include_self_link=False, transform_hrefs=False))
    return target


def _relative(path: Path, folder: Path) -> str:
    return os.path.relpath(Path(path).absolute(), folder.absolute())


def write_catalog(outcomes: Sequence[Any], settings: Any, out: Path) -> list[Path]:
    """The Catalog of every Item under `out` (a stage's finish: runs once after all tiles)."""
    items = sorted(out.rglob(f"*{ITEM_SUFFIX}"))
    if not items:
        return []
    catalog = pystac.Catalog(
        id=out.name or "watergee",
        description=f"watergee products under {out.name or out}: class maps, mosaics and "
        "what was made of them, each with its STAC Item.",
    )
    for path in items:
        catalog.add_link(pystac.Link("item", f"./{path.relative_to(out).as_posix()}",
                                     media_type=pystac.MediaType.GEOJSON,
                                     title=path.name[: -len(ITEM_SUFFIX)]))  # fmt: skip
    target = out / CATALOG
    write_json_atomic(target, catalog.to_dict(include_self_link=False, transform_hrefs=False))
    return [target]


_FRAMEWORK = {"pixelcnn": "TensorFlow", "resnet": "TensorFlow", "dense-resnet": "TensorFlow",
              "svm": "scikit-learn", "rf": "scikit-learn"}  # fmt: skip
_ARCHITECTURE = {"pixelcnn": "pixel CNN", "resnet": "ResNet", "dense-resnet": "fully "
                 "convolutional ResNet", "svm": "support vector machine",
                 "rf": "random forest"}  # fmt: skip


def write_model_record(folder: Path, metadata: Mapping[str, Any]) -> Path:
    """The STAC MLM (machine learning model) Item of a model artifact, beside its model.json:
    what goes in (channels, patch), what comes out (classes), framework and file."""
    kind = metadata["kind"]
    channels = list(metadata["channels"])
    patch = int(metadata["patch"])
    classes = [
        Classification.create(
            value=int(c["id"]),
            name=re.sub(r"[^0-9A-Za-z_-]+", "_", c.get("name") or f"class_{c['id']}"),
            title=c.get("name") or None,
            description=c.get("name") or f"class {c['id']}",
        ).to_dict()
        for c in metadata["classes"]
    ]
    versions = metadata.get("versions", {})
    framework = _FRAMEWORK[kind]
    version = (
        versions.get("tensorflow") or versions.get("tensorflow-cpu") or versions.get("scikit-learn")
    )
    dense = kind in ("pixelcnn", "dense-resnet")
    properties: dict[str, Any] = {
        "description": f"watergee {kind} model: {len(channels)} channels ({metadata['scaling']}), "
        f"{patch} px patches, {len(classes)} classes.",
        "mlm:name": folder.name,
        "mlm:architecture": _ARCHITECTURE[kind],
        "mlm:tasks": ["semantic-segmentation" if dense else "classification"],
        "mlm:framework": framework,
        "mlm:input": [{
            "name": "patch",
            "bands": channels,
            "input": {"shape": [-1, patch, patch, len(channels)],
                      "dim_order": ["batch", "height", "width", "bands"],
                      "data_type": "float32"},
            **({"norm_type": "z-score"} if metadata.get("normalization") else {}),
        }],
        "mlm:output": [{
            "name": "classes",
            "tasks": ["semantic-segmentation" if dense else "classification"],
            "result": {"shape": [-1, len(classes)], "dim_order": ["batch", "class"],
                       "data_type": "float32"},
            "classification:classes": classes,
        }],
        "watergee:version": metadata.get("watergee", __version__),
    }  # fmt: skip
    if version:
        properties["mlm:framework_version"] = version
    model_file = folder / metadata["file"]
    when = model_file.stat().st_mtime if model_file.exists() else None
    stamp = (
        dt.datetime.fromtimestamp(when, dt.timezone.utc)
        if when
        else dt.datetime.now(dt.timezone.utc)
    )
    item = pystac.Item(id=folder.name, geometry=None, bbox=None, datetime=stamp,
                       properties=properties,
                       stac_extensions=[MLM_SCHEMA, RasterExtension.get_schema_uri()])  # fmt: skip
    artifact = "keras.Model.save" if framework == "TensorFlow" else "joblib.dump"
    item.add_asset("model", pystac.Asset(
        href=f"./{metadata['file']}", title=f"{kind} model", roles=["mlm:model"],
        media_type="application/octet-stream",
        extra_fields={"mlm:artifact_type": artifact,  # MLM names the input bands here
                      "raster:bands": [{"name": c, "data_type": "float32"} for c in channels]},
    ))  # fmt: skip
    about = pystac.Asset(href="./model.json", media_type=pystac.MediaType.JSON,
                         roles=["metadata"], title="watergee model metadata")  # fmt: skip
    item.add_asset("metadata", about)
    target = folder / MODEL_RECORD
    write_json_atomic(target, item.to_dict(include_self_link=False, transform_hrefs=False))
    return target
