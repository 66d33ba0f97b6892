"""A local evaluator of serialised Earth Engine image expressions, on numpy arrays.

It knows only the operations watergee's own expressions use, each following Earth Engine's
documented semantics: masks combine as the AND of the inputs, a one-band operand is used
against every band of the other, equal band counts pair in order and take the first image's
names, masked pixels enter a neighbourhood as `defaultValue`. It evaluates a finite window, so
beside its Earth Engine mask each band carries what is *known* there: a neighbourhood that
leaves the window is unknown, and so is everything computed from it; the result is masked
where it is unknown (the server would read the pixels beyond). It exists to prove an exported
network exact without a server, and to answer fake computePixels requests in tests of the
download code.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from watergee.core.errors import WatergeeError


class InterpreterError(WatergeeError, ValueError):
    """The expression uses an operation or argument the local evaluator does not know."""


@dataclass
class Band:
    name: str
    data: np.ndarray  # (H, W, *array shape); (1, 1, ...) for a constant
    mask: np.ndarray  # (H, W) bool, broadcastable: Earth Engine's mask
    known: np.ndarray = field(default_factory=lambda: np.ones((1, 1), bool))

    def like(self, name: str | None = None, data: np.ndarray | None = None,
             mask: np.ndarray | None = None) -> Band:  # fmt: skip
        """The band with some of its parts replaced; what is known stays."""
        return Band(self.name if name is None else name, self.data if data is None else data,
                    self.mask if mask is None else mask, self.known)  # fmt: skip


Image = list[Band]


def image_from_array(array: np.ndarray, names: list[str], mask: np.ndarray | None = None) -> Image:
    """An image from (bands, H, W) values; `mask` (H, W) or (bands, H, W) marks valid pixels."""
    array = np.asarray(array, np.float64)
    if mask is None:
        mask = np.ones(array.shape[1:], bool)
    masks = np.broadcast_to(mask, array.shape)
    return [Band(n, array[i], masks[i].copy()) for i, n in enumerate(names)]


def _all(masks: Iterable[np.ndarray]) -> np.ndarray:
    """AND of masks of broadcastable shapes."""
    return functools.reduce(np.logical_and, masks)


def _pairs(a: Image, b: Image, what: str) -> list[tuple[Band, Band, str]]:
    if len(a) == 1 or len(b) == 1:
        names = [x.name for x in (a if len(a) >= len(b) else b)]
        return [(a[0] if len(a) == 1 else a[i], b[0] if len(b) == 1 else b[i], names[i])
                for i in range(max(len(a), len(b)))]  # fmt: skip
    if len(a) != len(b):
        raise InterpreterError(f"{what}: {len(a)} and {len(b)} bands cannot be paired")
    return [(x, y, x.name) for x, y in zip(a, b, strict=True)]


def _binary(function: Callable[[np.ndarray, np.ndarray], np.ndarray], what: str):
    def apply(image1: Image, image2: Image) -> Image:
        return [Band(name, function(x.data, y.data), x.mask & y.mask, x.known & y.known)
                for x, y, name in _pairs(image1, image2, what)]  # fmt: skip

    return apply


def _constant(value: Any) -> Image:
    array = np.asarray(value, np.float64)
    full = np.ones((1, 1), bool)
    if isinstance(value, np.ndarray):  # an ee.Array: one band of array pixels
        return [Band("constant", array[None, None], full)]
    values = array.reshape(-1)
    names = ["constant"] + [f"constant_{i}" for i in range(1, values.size)]
    return [Band(n, np.full((1, 1), v), full) for n, v in zip(names, values, strict=True)]


def _select(input: Image, bandSelectors: list, newNames: list | None = None) -> Image:
    by_name = {b.name: b for b in input}
    out = []
    for selector in bandSelectors:
        if isinstance(selector, int):
            out.append(input[selector])
        elif selector in by_name:
            out.append(by_name[selector])
        else:
            raise InterpreterError(f"select: no band {selector!r} in {list(by_name)}")
    if newNames is not None:
        out = [b.like(name=n) for n, b in zip(newNames, out, strict=True)]
    return out


def _rename(input: Image, names: list[str]) -> Image:
    if len(names) != len(input):
        raise InterpreterError(f"rename: {len(names)} names for {len(input)} bands")
    return [b.like(name=n) for n, b in zip(names, input, strict=True)]


def _windows(values: np.ndarray, radius: int, outside: float) -> np.ndarray:
    """[y, x, i, j]: the (2 radius + 1)^2 neighbourhood of every pixel, axis 0 along Y."""
    side = 2 * radius + 1
    return sliding_window_view(np.pad(values, radius, constant_values=outside), (side, side))


def _known_around(band: Band, radius: int, shape: tuple[int, int]) -> np.ndarray:
    known = np.broadcast_to(band.known, shape).astype(float)
    return _windows(known, radius, 0.0).min(axis=(2, 3)) > 0


def _neighbourhood(image: Image, kernel: dict, defaultValue: float = 0.0) -> Image:
    radius = kernel["radius"]
    out = []
    for band in image:
        if band.data.ndim != 2:
            raise InterpreterError("neighborhoodToArray: the image must be scalar-valued")
        filled = np.where(band.mask, band.data, defaultValue)
        windows = _windows(filled, radius, np.nan).copy()
        known = _known_around(band, radius, filled.shape)
        out.append(Band(band.name, windows, band.mask, known))
    return out


def _focal_min(image: Image, radius: int, kernelType: str = "circle", units: str = "pixels",
               iterations: int = 1, kernel: Any = None) -> Image:  # fmt: skip
    if kernelType != "square" or units != "pixels" or iterations != 1 or kernel is not None:
        raise InterpreterError("focalMin: only a square kernel in pixels, once, is evaluated")
    radius = int(radius)
    out = []
    for band in image:
        values = np.where(band.mask, band.data, np.inf)  # masked pixels take no part
        low = _windows(values, radius, np.inf).min(axis=(2, 3))
        known = _known_around(band, radius, values.shape)
        out.append(Band(band.name, low, np.isfinite(low), known))
    return out


def _mask_of(image: Image) -> Image:
    return [Band(b.name, b.mask.astype(np.float64), np.ones_like(b.mask), b.known) for b in image]


def _unmask(input: Image, value: Image | None = None, sameFootprint: bool = True) -> Image:
    fill = value if value is not None else _constant(0)
    return [Band(x.name, np.where(x.mask, x.data, y.data), np.ones_like(x.mask), x.known & y.known)
            for x, y, _ in _pairs(input, fill, "unmask")]  # fmt: skip


def _update_mask(image: Image, mask: Image) -> Image:
    return [Band(x.name, x.data, x.mask & (y.data != 0) & y.mask, x.known & y.known)
            for x, y, _ in _pairs(image, mask, "updateMask")]  # fmt: skip


def _to_array(image: Image, axis: int = 0) -> Image:
    dims = {b.data.ndim - 2 for b in image}
    if len(dims) != 1:
        raise InterpreterError("toArray: bands of different dimensionality")
    (dim,) = dims
    shape = np.broadcast_shapes(*(b.data.shape[:2] for b in image))
    data = [np.broadcast_to(b.data, shape + b.data.shape[2:]) for b in image]
    if axis == dim:
        joined = np.stack(data, axis=2 + axis)
    elif axis < dim:
        joined = np.concatenate(data, axis=2 + axis)
    else:
        raise InterpreterError(f"toArray: axis {axis} for {dim}-D pixels")
    mask = _all(b.mask for b in image)
    known = _all(b.known for b in image)
    return [Band("array", joined, mask, known)]


def _flatten(image: Image, coordinateLabels: list, separator: str = "_") -> Image:
    (band,) = image
    shape = tuple(len(labels) for labels in coordinateLabels)
    if band.data.shape[2:] != shape:
        raise InterpreterError(f"arrayFlatten: labels {shape} for arrays {band.data.shape[2:]}")
    flat = band.data.reshape((*band.data.shape[:2], -1))
    names = [separator.join(parts) for parts in itertools.product(*coordinateLabels)]
    return [band.like(name=n, data=flat[..., i]) for i, n in enumerate(names)]


def _matmul(image1: Image, image2: Image) -> Image:
    return [Band(name, np.matmul(x.data, y.data), x.mask & y.mask, x.known & y.known)
            for x, y, name in _pairs(image1, image2, "matrixMultiply")]  # fmt: skip


def _reduce(image: Image, reducer: str) -> Image:
    function = {"max": np.max, "sum": np.sum, "min": np.min, "mean": np.mean}[reducer]
    shape = np.broadcast_shapes(*(b.data.shape for b in image))
    values = np.stack([np.broadcast_to(b.data, shape) for b in image])
    mask = _all(b.mask for b in image)
    known = _all(b.known for b in image)
    return [Band(reducer, function(values, axis=0), mask, known)]


def _argmax(image: Image) -> Image:
    out = []
    for band in image:
        cells = band.data.reshape((*band.data.shape[:2], -1))
        position = np.unravel_index(np.argmax(cells, axis=-1), band.data.shape[2:])
        out.append(band.like(data=np.stack(position, axis=-1).astype(np.float64)))
    return out


def _remap(image: Image, **arguments: Any) -> Image:
    source, target = arguments["from"], arguments["to"]
    out = []
    for band in image:
        values = np.full(band.data.shape, np.nan)
        for a, b in zip(source, target, strict=True):
            values[band.data == a] = b
        default = arguments.get("defaultValue")
        found = ~np.isnan(values)
        if default is not None:
            values[~found] = default
            found[:] = True
        out.append(band.like(data=np.nan_to_num(values), mask=band.mask & found))
    return out


def _add_bands(dstImg: Image, srcImg: Image, names=None, overwrite=False) -> Image:
    taken = {b.name for b in dstImg}
    clash = [b.name for b in srcImg if b.name in taken]
    if clash and not overwrite:
        raise InterpreterError(f"addBands: band names {clash} taken")
    return [b for b in dstImg if b.name not in {s.name for s in srcImg}] + list(srcImg)


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Earth Engine's division: 0 where the divisor is 0."""
    return np.where(b != 0, a / np.where(b != 0, b, 1), 0.0)


def _cast(function: Callable[[np.ndarray], np.ndarray]):
    return lambda value: [b.like(data=function(b.data)) for b in value]


OPERATIONS: dict[str, Callable[..., Any]] = {
    "Array": lambda values: np.asarray(values, np.float64),
    "Image.constant": _constant,
    "Image.select": _select,
    "Image.rename": _rename,
    "Image.add": _binary(np.add, "add"),
    "Image.subtract": _binary(np.subtract, "subtract"),
    "Image.multiply": _binary(np.multiply, "multiply"),
    "Image.divide": _binary(_divide, "divide"),
    "Image.max": _binary(np.maximum, "max"),
    "Image.eq": _binary(lambda a, b: (a == b).astype(np.float64), "eq"),
    "Image.neq": _binary(lambda a, b: (a != b).astype(np.float64), "neq"),
    "Image.gt": _binary(lambda a, b: (a > b).astype(np.float64), "gt"),
    "Image.gte": _binary(lambda a, b: (a >= b).astype(np.float64), "gte"),
    "Image.bitwiseAnd": _binary(lambda a, b: _ints(a) & _ints(b), "bitwiseAnd"),
    "Image.rightShift": _binary(lambda a, b: _ints(a) >> _ints(b), "rightShift"),
    "Image.exp": _cast(np.exp),
    "Image.reduce": _reduce,
    "Reducer.max": lambda: "max",
    "Reducer.sum": lambda: "sum",
    "Reducer.min": lambda: "min",
    "Reducer.mean": lambda: "mean",
    "Kernel.square": lambda radius, units="pixels", normalize=True, magnitude=1.0: {
        "radius": int(radius) if units == "pixels" else _units(units)
    },
    "Image.neighborhoodToArray": _neighbourhood,
    "Image.focalMin": _focal_min,
    "Image.mask": _mask_of,
    "Image.unmask": _unmask,
    "Image.updateMask": _update_mask,
    "Image.toArray": _to_array,
    "Image.arrayFlatten": _flatten,
    "Image.matrixMultiply": _matmul,
    "Image.arrayArgmax": _argmax,
    "Image.remap": _remap,
    "Image.addBands": _add_bands,
    "Image.toUint8": _cast(lambda v: np.clip(np.trunc(v), 0, 255)),
    "Image.toFloat": _cast(lambda v: v.astype(np.float32).astype(np.float64)),
}


def _ints(values: np.ndarray) -> np.ndarray:
    return values.astype(np.int64)


def _units(units: str) -> int:
    raise InterpreterError(f"Kernel.square: units {units!r} (only pixels are evaluated locally)")


def evaluate(encoded: dict, sources: dict[str, Image]) -> Image:
    """The image an encoded expression (`ee.serializer.encode(..., for_cloud_api=True)`)
    computes; `Image.load` ids are looked up in `sources`."""
    values = encoded["values"]
    done: dict[str, Any] = {}

    def node(value: dict) -> Any:
        if "constantValue" in value:
            return value["constantValue"]
        if "valueReference" in value:
            key = value["valueReference"]
            if key not in done:
                done[key] = node(values[key])
            return done[key]
        if "arrayValue" in value:
            return [node(v) for v in value["arrayValue"]["values"]]
        if "dictionaryValue" in value:
            return {k: node(v) for k, v in value["dictionaryValue"]["values"].items()}
        if "functionInvocationValue" in value:
            call = value["functionInvocationValue"]
            name = call.get("functionName")
            arguments = {k: node(v) for k, v in call.get("arguments", {}).items()}
            if name == "Image.load":
                if arguments["id"] not in sources:
                    raise InterpreterError(f"Image.load: no local source for {arguments['id']!r}")
                return sources[arguments["id"]]
            if name not in OPERATIONS:
                raise InterpreterError(f"{name}: not known to the local evaluator")
            return OPERATIONS[name](**arguments)
        raise InterpreterError(f"cannot evaluate {sorted(value)}")

    result = node({"valueReference": encoded["result"]})
    return [b.like(mask=b.mask & np.broadcast_to(b.known, b.mask.shape)) for b in result]
